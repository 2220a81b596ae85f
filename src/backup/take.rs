//! Taking a backup of a live SQLite database: `cpis backup --to PATH` and the scheduled ones.
//!
//! 1. `VACUUM INTO` a hidden file beside the destination (`.NAME.partial-PID`, created empty
//!    with mode 0600): one read snapshot of the whole database, taken while the server serves.
//!    In WAL mode a reader never blocks the writers and never takes a write turn; the WAL
//!    checkpointer is told to leave its `RESTART` alone meanwhile (`db::backup_marker`).
//! 2. Check the copy read-only: `integrity_check`, the same migrations as the source, and every
//!    table's rows between the source's before and after the copy (it is one instant between
//!    the two).
//! 3. Seal it (`seal`), sync it, rename it into place and sync the directory.
//!
//! Anything short of that leaves no file under the destination's name, and the partial one has
//! no seal: `cpis restore` refuses it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::SqliteConnection;

use super::inspect::{self, Counts, Inspection};
use crate::db::backup_marker::Beacon;

/// A backup in place.
#[derive(Debug, Clone)]
pub struct Taken {
    pub path: PathBuf,
    pub bytes: u64,
    pub seconds: f64,
    /// The checked copy: counts and schema.
    pub inspection: Inspection,
}

/// Where `--to` puts the backup: a directory gets a new dated file (`schedule::file_name`).
pub fn destination(to: &Path, now_ms: i64) -> PathBuf {
    if to.is_dir() {
        to.join(super::schedule::file_name(now_ms))
    } else {
        to.to_path_buf()
    }
}

/// Copies the SQLite database at `database` to `to`, checked and sealed, with `progress` moved
/// by the bytes written (its length set to the bytes expected).
pub fn take(
    database: &Path,
    to: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Taken, String> {
    let started = Instant::now();
    super::priority::give_way();
    if !database.is_file() {
        return Err(format!("no database at {}", database.display()));
    }
    may_write(database, to)?;
    let dir = to.parent().unwrap_or(Path::new(""));
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let partial = super::partial_name(to, "partial");
    let _ = std::fs::remove_file(&partial);
    super::create_owner_only(&partial)
        .map_err(|e| format!("cannot write in {}: {e}", display_dir(dir)))?;
    let checked = copy_and_check(database, &partial, progress).and_then(|inspection| {
        std::fs::rename(&partial, to)
            .map_err(|e| format!("cannot rename the copy to {}: {e}", to.display()))?;
        super::sync_dir(dir).map_err(|e| format!("syncing {}: {e}", display_dir(dir)))?;
        Ok(inspection)
    });
    progress.finish_and_clear();
    match checked {
        Ok(inspection) => Ok(Taken {
            bytes: std::fs::metadata(to).map_or(0, |m| m.len()),
            path: to.to_path_buf(),
            seconds: started.elapsed().as_secs_f64(),
            inspection,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(journal_of(&partial));
            Err(e)
        }
    }
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".into()
    } else {
        dir.display().to_string()
    }
}

fn journal_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("-journal");
    PathBuf::from(name)
}

/// A backup replaces only an earlier backup: never the database, its WAL, or a file that is
/// not a finished backup (a mistyped `--to` must not destroy anything).
fn may_write(database: &Path, to: &Path) -> Result<(), String> {
    let Ok(existing) = std::fs::metadata(to) else {
        return Ok(());
    };
    let mut wal = database.as_os_str().to_os_string();
    wal.push("-wal");
    if [database, Path::new(&wal)]
        .iter()
        .any(|f| same_file(&existing, f))
    {
        return Err(format!("{} is the database itself", to.display()));
    }
    if !existing.is_file() || !super::seal::file_is_sealed(to) {
        return Err(format!(
            "{} exists and is not a cpis backup: choose another name (or a directory)",
            to.display()
        ));
    }
    Ok(())
}

fn same_file(existing: &std::fs::Metadata, other: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(other)
            .is_ok_and(|m| m.dev() == existing.dev() && m.ino() == existing.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (existing, other);
        false
    }
}

#[derive(QueryableByName)]
struct Bytes {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// The live database, opened without creating it.
fn open_source(database: &Path) -> Result<SqliteConnection, String> {
    let mut c = SqliteConnection::establish(&super::sqlite_uri(database, "rw"))
        .map_err(|e| format!("cannot open {}: {e}", database.display()))?;
    c.batch_execute("PRAGMA busy_timeout = 5000")
        .map_err(|e| e.to_string())?;
    Ok(c)
}

fn copy_and_check(
    database: &Path,
    partial: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Inspection, String> {
    let mut source = open_source(database)?;
    let versions = inspect::versions(&mut source)?;
    let before = inspect::counts(&mut source)?;
    let expected: Bytes = diesel::sql_query(
        "SELECT (page_count - freelist_count) * page_size AS bytes \
         FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
    )
    .get_result(&mut source)
    .map_err(|e| e.to_string())?;
    progress.set_length(u64::try_from(expected.bytes).unwrap_or_default());
    {
        let _beacon = Beacon::start(database, partial, progress.clone());
        diesel::sql_query("VACUUM INTO ?")
            .bind::<Text, _>(partial.to_string_lossy())
            .execute(&mut source)
            .map_err(|e| format!("copying the database: {e}"))?;
    }
    let after = inspect::counts(&mut source)?;
    drop(source);
    let mut copy = inspect::open_read_only(partial)?;
    inspect::integrity(&mut copy)?;
    let copied_versions = inspect::versions(&mut copy)?;
    if copied_versions != versions {
        return Err("the copy's schema differs from the database's".into());
    }
    let counts = inspect::counts(&mut copy)?;
    between(&before, &after, &counts)?;
    drop(copy);
    super::seal::set(partial, true)?;
    Ok(Inspection {
        counts,
        versions,
        sealed: true,
    })
}

/// Every table of the copy holds rows between what the source held before and after the copy
/// (tables only grow but for retention's purge, so a snapshot between the two lies between
/// them), and the copy has exactly the source's tables.
fn between(before: &Counts, after: &Counts, copy: &Counts) -> Result<(), String> {
    let names = |c: &Counts| c.tables.keys().cloned().collect::<Vec<_>>();
    if names(copy) != names(before) || names(copy) != names(after) {
        return Err("the copy's tables differ from the database's".into());
    }
    for (table, n) in &copy.tables {
        let b = before.tables.get(table).copied().unwrap_or_default();
        let a = after.tables.get(table).copied().unwrap_or_default();
        if *n < b.min(a) || *n > b.max(a) {
            return Err(format!(
                "the copy's {table} holds {n} rows, the database {b} before the copy and {a} after"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rows: &[(&str, i64)]) -> Counts {
        Counts {
            tables: rows.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            ..Counts::default()
        }
    }

    #[test]
    fn a_copy_lies_between_the_counts_before_and_after() {
        let before = counts(&[("audit_events", 10), ("resources", 5)]);
        let after = counts(&[("audit_events", 20), ("resources", 5)]);
        assert!(between(
            &before,
            &after,
            &counts(&[("audit_events", 15), ("resources", 5)])
        )
        .is_ok());
        let short = between(
            &before,
            &after,
            &counts(&[("audit_events", 9), ("resources", 5)]),
        );
        assert!(short.is_err_and(|e| e.contains("audit_events holds 9")));
        let missing = between(&before, &after, &counts(&[("audit_events", 15)]));
        assert!(missing.is_err());
    }

    #[test]
    fn a_backup_never_replaces_the_database_or_a_file_that_is_not_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cpis.db");
        std::fs::write(&db, b"SQLite format 3\0").unwrap();
        let refused = may_write(&db, &db).unwrap_err();
        assert!(refused.contains("the database itself"), "{refused}");
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, b"keep me").unwrap();
        let refused = may_write(&db, &notes).unwrap_err();
        assert!(refused.contains("not a cpis backup"), "{refused}");
        assert!(may_write(&db, &dir.path().join("new.db")).is_ok());
    }
}
