//! Backups of the embedded database (SQLite), and restoring one (issue #30).
//!
//! - `take`: `cpis backup --to PATH` and the scheduled backups: an online copy with `VACUUM
//!   INTO` (one read snapshot, never a write turn), checked and sealed, then renamed into place.
//! - `inspect`: what a database file holds and whether it is sound (integrity, schema, counts).
//! - `seal`: the mark a finished, checked backup carries, and nothing else does.
//! - `db::backup_marker`: tells the WAL checkpointer (in any process) that a backup holds a
//!   snapshot (in `db/`, beside the checkpointer that reads it).
//! - `priority`: the copying thread gives way to the requests (nice 19, low I/O priority).
//! - `restore`: `cpis restore --from PATH --to DATABASE_URL`.
//! - `schedule` and `status`: `CPIS_BACKUP_DIR`/`_EVERY`/`_KEEP` inside the server, and what
//!   `/metrics` and `/_ready` say of the last good backup.
//!
//! PostgreSQL has its own tools (`POSTGRES_ADVICE`); cpis copies only SQLite files.

pub mod command;
pub mod inspect;
pub mod priority;
pub mod restore;
pub mod schedule;
pub mod seal;
pub mod status;
pub mod take;

use std::path::{Path, PathBuf};

pub use inspect::{Counts, Inspection};
pub use schedule::Schedule;
pub use status::BackupStatus;

/// What `cpis backup` and `cpis restore` print on PostgreSQL (and exit 2).
pub const POSTGRES_ADVICE: &str = "\
the database is PostgreSQL: cpis copies only its embedded SQLite database. Use PostgreSQL's tools:
  a consistent logical copy, taken online:
    pg_dump --format=custom --file=cpis-$(date -u +%Y%m%dT%H%M%SZ).dump \"$CPIS_DATABASE_URL\"
    restore: createdb cpis_restored && pg_restore --exit-on-error --dbname=cpis_restored FILE.dump
  point-in-time recovery (PITR): a base backup plus archived WAL
    postgresql.conf: wal_level=replica, archive_mode=on, archive_command='test ! -f /wal/%f && cp %p /wal/%f'
    pg_basebackup --pgdata=/backups/base-$(date -u +%Y%m%d) --wal-method=stream --checkpoint=fast --progress
    restore: a base backup as the data directory, restore_command='cp /wal/%f %p',
    recovery_target_time='…', touch recovery.signal, start PostgreSQL
README, \"Backups\", has both step by step.";

/// A SQLite `CPIS_DATABASE_URL`'s file, or why there is none to copy.
pub enum Target {
    Sqlite(PathBuf),
    Postgres,
}

/// Which engine `url` names, for the backup commands.
pub fn target(url: &str) -> Result<Target, String> {
    match crate::db::Backend::from_url(url)? {
        crate::db::Backend::Sqlite(path) => Ok(Target::Sqlite(PathBuf::from(path))),
        crate::db::Backend::Postgres(_) => Ok(Target::Postgres),
    }
}

/// `path` as a SQLite URI filename (`file:…`), so that it can be opened with `mode=…`: the
/// characters a URI gives meaning to are escaped.
pub(crate) fn sqlite_uri(path: &Path, mode: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b'%')
        .add(b'?')
        .add(b'#')
        .add(b' ');
    let text = path.to_string_lossy();
    format!(
        "file:{}?mode={mode}",
        percent_encoding::utf8_percent_encode(&text, ESCAPED)
    )
}

/// The file beside `path` that a copy is written to before it is renamed into place: hidden,
/// and named so that nobody takes it for a finished file (`.NAME.partial-PID`).
pub(crate) fn partial_name(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "cpis.db".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{kind}-{}", std::process::id()))
}

/// Makes a rename (or a removal) in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

/// A new, empty file only its owner may read and write (0600).
pub(crate) fn create_owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A time in epoch milliseconds as RFC 3339 UTC (seconds).
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_filenames_escape_what_a_uri_gives_meaning_to() {
        assert_eq!(
            sqlite_uri(Path::new("/tmp/a b/c?d#e%f.db"), "ro"),
            "file:/tmp/a%20b/c%3Fd%23e%25f.db?mode=ro"
        );
    }

    #[test]
    fn a_partial_copy_is_hidden_and_says_what_it_is() {
        let partial = partial_name(Path::new("/backups/cpis.db"), "partial");
        let name = partial
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(".cpis.db.partial-"), "{name}");
        assert_eq!(partial.parent(), Some(Path::new("/backups")));
    }
}
