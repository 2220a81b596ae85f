//! The seal of a finished backup: SQLite's `application_id` header field set to `CPIS`.
//!
//! A live database has 0 there and `VACUUM INTO` copies it, so a copy carries the seal only
//! once it has been checked in full and sealed, as the last write before it is renamed into
//! place: a copy cut short at any moment (SIGKILL, a full disk, a power cut) has no seal,
//! whatever its name and however sound its pages look. A restored database has it taken off,
//! so the live file never carries it.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::SqliteConnection;

/// `CPIS` in ASCII.
pub const SEAL: i64 = 0x4350_4953;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    application_id: i64,
}

/// Whether the database open on `c` carries the seal.
pub fn is_sealed(c: &mut SqliteConnection) -> Result<bool, String> {
    diesel::sql_query("SELECT application_id FROM pragma_application_id")
        .get_result::<Id>(c)
        .map(|id| id.application_id == SEAL)
        .map_err(|e| format!("reading the seal: {e}"))
}

/// Whether the file at `path` carries the seal, from its header alone (bytes 68–71): for
/// listing a directory of backups without opening each.
pub fn file_is_sealed(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 72];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    read.is_ok()
        && header.starts_with(b"SQLite format 3\0")
        && header
            .get(68..72)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .is_some_and(|b| i64::from(u32::from_be_bytes(b)) == SEAL)
}

/// Sets (or with `sealed` false, takes off) the seal on the file at `path`, durably.
pub fn set(path: &Path, sealed: bool) -> Result<(), String> {
    let mut c = SqliteConnection::establish(&super::sqlite_uri(path, "rw"))
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let value = if sealed { SEAL } else { 0 };
    c.batch_execute(&format!(
        "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA application_id = {value};"
    ))
    .map_err(|e| format!("sealing {}: {e}", path.display()))?;
    drop(c);
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("syncing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seal_is_read_from_the_header_as_sqlite_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.batch_execute("CREATE TABLE t (x INTEGER)").unwrap();
        drop(c);
        assert!(!file_is_sealed(&path));
        set(&path, true).unwrap();
        assert!(file_is_sealed(&path));
        let mut c = super::super::inspect::open_read_only(&path).unwrap();
        assert!(is_sealed(&mut c).unwrap());
        drop(c);
        set(&path, false).unwrap();
        assert!(!file_is_sealed(&path));
    }
}
