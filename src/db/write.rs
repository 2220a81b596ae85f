//! Write transactions and the SQLite write turns they take: one writer at a time, in the order
//! they came.

use super::turns::Turns;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use diesel::SqliteConnection;

use super::DbConn;

/// How a write transaction opened inside another one runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// As a savepoint: a failure undoes this part only (how each entry of a batch upload can
    /// stand on its own inside the batch's one transaction).
    Savepoint,
    /// Folded into the enclosing transaction, no savepoint: for bulk work (an upload) that
    /// rolls back the whole enclosing transaction on any failure and so has no use for partial
    /// undo; savepoints cost far more than the writes they wrap. A failed statement may then
    /// have aborted the whole transaction (PostgreSQL): nothing can be retried inside it.
    Folded,
}

/// A write transaction. On SQLite it is `BEGIN IMMEDIATE`, so the write lock is taken up front
/// and concurrent writers wait (busy_timeout) instead of failing on a read→write upgrade.
/// Inside another transaction it is a savepoint.
#[track_caller]
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    write_transaction_with(conn, Nesting::Savepoint, f)
}

/// A write transaction that, inside another one, runs as `nesting` says.
#[track_caller]
pub fn write_transaction_with<T, E, F>(conn: &mut DbConn, nesting: Nesting, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let nested = match conn {
        DbConn::Sqlite(c) => in_transaction(c)?,
        DbConn::Postgres(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()?
            .is_some(),
    };
    if nested && nesting == Nesting::Folded {
        return f(conn);
    }
    let _turn = match conn {
        DbConn::Sqlite(_) if !nested => Some(sqlite_write_turn()?),
        _ => None,
    };
    match conn {
        DbConn::Sqlite(c) => {
            if in_transaction(c)? {
                AnsiTransactionManager::begin_transaction(c)?
            } else {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
            }
        }
        DbConn::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <DbConn as Connection>::TransactionManager::rollback_transaction(conn) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                Err(rollback) => Err(rollback.into()),
            }
        }
    }
}

/// How long a SQLite writer waits for its turn (as `busy_timeout` waits for the file lock).
const SQLITE_WRITE_WAIT: Duration = Duration::from_millis(5000);

/// SQLite has one writer at a time, and its busy handler is not fair: a writer that commits and
/// begins again at once (a large upload's next part) can keep a waiting one (the audit writer,
/// which every audited lookup waits on) out for seconds. So this process's SQLite writers take
/// turns here first: in the order they came, the audit writer and the checkpointer ahead of the
/// rest (`turns`). PostgreSQL locks rows, not the database.
static SQLITE_WRITERS: Turns = Turns::new();

/// A turn held longer than this is logged, with where it was taken: every other writer (and so
/// every audited lookup) waited that long.
const LONG_TURN: Duration = Duration::from_secs(1);

/// A write turn. Dropping it gives the turn to the next writer.
pub struct WriteTurn {
    since: std::time::Instant,
    taken_at: &'static std::panic::Location<'static>,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        SQLITE_WRITERS.give_up();
        let held = self.since.elapsed();
        if held > LONG_TURN {
            tracing::warn!(
                held_ms = u64::try_from(held.as_millis()).unwrap_or(u64::MAX),
                taken_at = %self.taken_at,
                "SQLite write turn held long"
            );
        }
    }
}

/// This thread's turn to write on SQLite, or the contention error (503) after the wait.
#[track_caller]
fn sqlite_write_turn() -> QueryResult<WriteTurn> {
    sqlite_write_turn_within(SQLITE_WRITE_WAIT).ok_or_else(|| {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("database is locked: no write turn in time".to_string()),
        )
    })
}

/// A write turn, if one comes within `wait`.
#[track_caller]
pub(super) fn sqlite_write_turn_within(wait: Duration) -> Option<WriteTurn> {
    let taken_at = std::panic::Location::caller();
    SQLITE_WRITERS.take(wait).then(|| WriteTurn {
        since: std::time::Instant::now(),
        taken_at,
    })
}

fn in_transaction(c: &mut SqliteConnection) -> QueryResult<bool> {
    Ok(AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()?
        .is_some())
}
