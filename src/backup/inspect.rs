//! What a SQLite database file holds, read without changing it: whether it is sound
//! (`PRAGMA integrity_check`), its schema (the migrations applied), and its row counts.

use std::collections::BTreeMap;
use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;

/// Rows of every table, and what an operator asks first of a copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every table's rows, by name.
    pub tables: BTreeMap<String, i64>,
    /// Plans on the register (EpisodeOfCare, deleted ones left out).
    pub plans: i64,
    /// Accesses recorded (AuditEvents).
    pub accesses: i64,
    /// When the newest access was recorded (epoch ms).
    pub newest_access_ms: Option<i64>,
}

impl Counts {
    /// `plans=… accesses=… newest_access=…`, as the commands print it.
    pub fn summary(&self) -> String {
        format!(
            "plans={} accesses={} newest_access={}",
            self.plans,
            self.accesses,
            self.newest_access_ms
                .map_or_else(|| "none".to_string(), super::rfc3339)
        )
    }
}

/// A checked database file.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub counts: Counts,
    /// The migrations applied, oldest first (diesel's versions: `20261122000000`).
    pub versions: Vec<String>,
    /// Whether it carries a finished backup's seal (`super::seal`).
    pub sealed: bool,
}

impl Inspection {
    /// The newest migration applied.
    pub fn schema(&self) -> &str {
        self.versions.last().map_or("none", String::as_str)
    }
}

/// Opens `path` read-only: nothing is created, changed or recovered.
pub fn open_read_only(path: &Path) -> Result<SqliteConnection, String> {
    is_sqlite_file(path)?;
    let mut c = SqliteConnection::establish(&super::sqlite_uri(path, "ro"))
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    c.batch_execute("PRAGMA busy_timeout = 5000")
        .map_err(|e| e.to_string())?;
    Ok(c)
}

/// Refuses a file that does not start as a SQLite database does.
pub fn is_sqlite_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if &head == b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(format!("{} is not a SQLite database", path.display()))
    }
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Newest {
    #[diesel(sql_type = Nullable<BigInt>)]
    ms: Option<i64>,
}

/// `PRAGMA integrity_check`: Ok when it answers `ok`, else its first findings.
pub fn integrity(c: &mut SqliteConnection) -> Result<(), String> {
    #[derive(QueryableByName)]
    struct Finding {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let lines: Vec<Finding> = diesel::sql_query("PRAGMA integrity_check(20)")
        .load(c)
        .map_err(|e| format!("integrity check: {e}"))?;
    match lines.as_slice() {
        [only] if only.integrity_check == "ok" => Ok(()),
        _ => Err(format!(
            "integrity check failed: {}",
            lines
                .iter()
                .map(|l| l.integrity_check.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// The migrations applied to the database, oldest first.
pub fn versions(c: &mut SqliteConnection) -> Result<Vec<String>, String> {
    diesel::sql_query(
        "SELECT CAST(version AS TEXT) AS line FROM __diesel_schema_migrations ORDER BY version",
    )
    .load::<Line>(c)
    .map(|lines| lines.into_iter().map(|l| l.line).collect())
    .map_err(|e| format!("no cpis schema (migrations) in it: {e}"))
}

/// The migrations this build knows, oldest first, as diesel records them.
pub fn known_versions() -> Vec<String> {
    crate::db::migration_names()
        .0
        .iter()
        .map(|name| {
            name.split('_')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        })
        .collect()
}

/// The first migration of `versions` this build does not know: a database written by a newer
/// cpis (its schema may hold what this one would lose or misread).
pub fn unknown_version<'a>(versions: &'a [String], known: &[String]) -> Option<&'a String> {
    versions.iter().find(|v| !known.contains(v))
}

/// Every table's rows, in one read snapshot.
pub fn counts(c: &mut SqliteConnection) -> Result<Counts, String> {
    c.transaction(|c| {
        let names: Vec<Line> = diesel::sql_query(
            "SELECT name AS line FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .load(c)?;
        let mut tables = BTreeMap::new();
        for Line { line: name } in names {
            let quoted = name.replace('"', "\"\"");
            let n: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM \"{quoted}\""))
                .get_result(c)?;
            tables.insert(name, n.n);
        }
        let plans: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM resources \
             WHERE resource_type = 'EpisodeOfCare' AND deleted = 0",
        )
        .get_result(c)?;
        let newest: Newest =
            diesel::sql_query("SELECT max(recorded_ms) AS ms FROM audit_events").get_result(c)?;
        Ok::<_, diesel::result::Error>(Counts {
            accesses: tables.get("audit_events").copied().unwrap_or_default(),
            tables,
            plans: plans.n,
            newest_access_ms: newest.ms,
        })
    })
    .map_err(|e| format!("counting rows: {e}"))
}

/// Opens `path` read-only and checks it: sound, a cpis schema this build knows (else the
/// error names the migration), and its counts.
pub fn inspect(path: &Path) -> Result<Inspection, String> {
    let mut c = open_read_only(path)?;
    integrity(&mut c)?;
    let versions = versions(&mut c)?;
    if let Some(newer) = unknown_version(&versions, &known_versions()) {
        return Err(format!(
            "{} has a newer schema than this cpis knows (migration {newer}): restore it with the \
             cpis release that wrote it, or a later one",
            path.display()
        ));
    }
    let counts = counts(&mut c)?;
    let sealed = super::seal::is_sealed(&mut c)?;
    Ok(Inspection {
        counts,
        versions,
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_versions_are_diesels_digits_in_order() {
        let known = known_versions();
        assert!(!known.is_empty());
        assert!(known
            .iter()
            .all(|v| v.len() == 14 && v.chars().all(|c| c.is_ascii_digit())));
        let mut sorted = known.clone();
        sorted.sort();
        assert_eq!(known, sorted);
    }

    #[test]
    fn a_migration_this_build_does_not_know_is_found() {
        let known = known_versions();
        assert_eq!(unknown_version(&known, &known), None);
        let mut newer = known.clone();
        newer.push("29991231000000".into());
        assert_eq!(
            unknown_version(&newer, &known).map(String::as_str),
            Some("29991231000000")
        );
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_before_opening() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notes.db");
        std::fs::write(&path, b"these are not the pages you are looking for")
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = inspect(&path).err().unwrap_or_default();
        assert!(refused.contains("not a SQLite database"), "{refused}");
    }
}
