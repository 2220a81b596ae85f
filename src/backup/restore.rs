//! `cpis restore --from PATH --to DATABASE_URL`: a sealed backup becomes the database.
//!
//! 1. The backup is checked before anything is touched: a SQLite file, sealed (a finished
//!    backup, never one cut short), `integrity_check`, no migration this build does not know
//!    (a newer schema is refused), and its counts.
//! 2. The target must not be held by a server (`held`), and an existing one is replaced only
//!    with `--replace`.
//! 3. The backup is copied beside the target (0600), unsealed, checked again (the same counts),
//!    the target's stale `-wal`/`-shm`/`-journal` removed (a WAL of the old file replayed onto
//!    the new one would corrupt it), renamed into place and the directory synced.
//! 4. The target is checked once more as it now is.

use std::io::Write;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::SqliteConnection;

use super::inspect::{self, Inspection};

/// What was restored.
#[derive(Debug, Clone)]
pub struct Restored {
    pub path: PathBuf,
    pub inspection: Inspection,
}

/// Why a restore did not happen.
#[derive(Debug)]
pub enum Refusal {
    /// The target is PostgreSQL.
    Postgres,
    /// Anything else, said in words.
    Refused(String),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Refusal {
        Refusal::Refused(reason)
    }
}

/// Restores the backup at `from` into the SQLite database `to_url` (`sqlite://…`).
pub fn restore(from: &Path, to_url: &str, replace: bool) -> Result<Restored, Refusal> {
    let target = match super::target(to_url)? {
        super::Target::Sqlite(path) => path,
        super::Target::Postgres => return Err(Refusal::Postgres),
    };
    let backup = inspect::inspect(from)?;
    if !backup.sealed {
        return Err(format!(
            "{} is not a finished cpis backup (no seal): a copy cut short, or a file not written \
             by `cpis backup`",
            from.display()
        )
        .into());
    }
    if same_file(from, &target) {
        return Err(format!("{} is the backup itself", target.display()).into());
    }
    refuse_if_held(&target)?;
    if target.exists() && !replace {
        return Err(format!(
            "{} exists: add --replace to overwrite it (keep a copy of it first)",
            target.display()
        )
        .into());
    }
    let dir = target.parent().unwrap_or(Path::new("")).to_path_buf();
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let staged = super::partial_name(&target, "restoring");
    let _ = std::fs::remove_file(&staged);
    let placed = stage(from, &staged, &backup).and_then(|()| {
        // A server may have started on the target since the first look.
        refuse_if_held(&target)?;
        for stale in ["-wal", "-shm", "-journal"] {
            let mut name = target.as_os_str().to_os_string();
            name.push(stale);
            match std::fs::remove_file(&name) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", Path::new(&name).display())),
            }
        }
        std::fs::rename(&staged, &target)
            .map_err(|e| format!("cannot rename into {}: {e}", target.display()))?;
        super::sync_dir(&dir).map_err(|e| format!("syncing {}: {e}", dir.display()))
    });
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&staged);
        return Err(Refusal::Refused(e));
    }
    let restored = inspect::inspect(&target).map_err(|e| format!("after the restore: {e}"))?;
    if restored.counts != backup.counts || restored.versions != backup.versions {
        return Err(format!(
            "after the restore {} holds {}, the backup {}",
            target.display(),
            restored.counts.summary(),
            backup.counts.summary()
        )
        .into());
    }
    Ok(Restored {
        path: target,
        inspection: restored,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Copies the backup to `staged` (0600), synced, unsealed, and checks it holds what the
/// backup does.
fn stage(from: &Path, staged: &Path, backup: &Inspection) -> Result<(), String> {
    let mut out = super::create_owner_only(staged)
        .map_err(|e| format!("cannot write {}: {e}", staged.display()))?;
    let mut input =
        std::fs::File::open(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    std::io::copy(&mut input, &mut out)
        .and_then(|_| out.flush())
        .and_then(|()| out.sync_all())
        .map_err(|e| format!("copying to {}: {e}", staged.display()))?;
    drop(out);
    super::seal::set(staged, false)?;
    let mut c = inspect::open_read_only(staged)?;
    inspect::integrity(&mut c)?;
    let counts = inspect::counts(&mut c)?;
    if counts != backup.counts {
        return Err(format!(
            "the copy holds {}, the backup {}",
            counts.summary(),
            backup.counts.summary()
        ));
    }
    Ok(())
}

fn refuse_if_held(target: &Path) -> Result<(), String> {
    if held(target)? {
        Err(format!(
            "{} is in use: a server (or another process) has it open. Stop it first; nothing \
             was changed",
            target.display()
        ))
    } else {
        Ok(())
    }
}

/// Whether a process has the SQLite database at `path` open.
///
/// A connection in WAL mode (every server's: its pool and its audit writer) keeps a shared
/// lock on the database file from its first read until it is closed, and the kernel drops it
/// with the process, so it is never stale (a lock file or a pid file would be, after a
/// SIGKILL). The probe asks for the exclusive lock, without waiting: SQLite grants it only when
/// no other connection, in any process, has the database open. The probe then closes at once
/// (and, being the only connection, checkpoints a WAL left by a server that was killed).
pub fn held(path: &Path) -> Result<bool, String> {
    if !path.exists() {
        return Ok(false);
    }
    let mut c = SqliteConnection::establish(&super::sqlite_uri(path, "rw"))
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let probe = c.batch_execute(
        "PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;",
    );
    Ok(match probe {
        Ok(()) => false,
        Err(e) => {
            let message = e.to_string();
            // Locked or busy: someone has it. Anything else (a damaged file being replaced) is
            // not a holder.
            message.contains("locked") || message.contains("busy")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_sees_a_connection_that_has_read_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpis.db");
        let mut server = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        server
            .batch_execute(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); SELECT * FROM t;",
            )
            .unwrap();
        assert!(held(&path).unwrap());
        drop(server);
        assert!(!held(&path).unwrap());
        assert!(!held(&dir.path().join("absent.db")).unwrap());
    }
}
