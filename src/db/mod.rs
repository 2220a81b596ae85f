//! Storage: one `DbConn` over SQLite and PostgreSQL, the r2d2 pool, migrations, and the async
//! boundary (`run`). Backend-specific SQL lives only in this module, in explicit `match` arms.
//!
//! Set-up is in `connection` (engines, connection settings, the pool) and `migrations`; write
//! transactions and SQLite's write turns in `write`; the WAL checkpointer in `checkpoint`; the
//! planner settings and statistics in `planner`.

pub mod audit;
pub mod backup_marker;
mod checkpoint;
mod connection;
mod migrations;
pub mod models;
pub mod outbox;
mod planner;
pub mod raw;
pub mod reports;
pub mod retention;
pub mod schema;
pub mod search;
pub mod store;
pub mod subscriptions;
mod turns;
mod write;

use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

use crate::error::FhirError;

pub use checkpoint::{checkpoint_at_stop, start_checkpointer};
pub use connection::{
    connect, connect_postgres, pool, pool_for, still_usable, Backend, ConnectionManager, PoolUse,
    PooledDb,
};
pub use migrations::{migrate, migration_names, revert_all, revert_through};
pub use planner::{
    configure_audit_writer, plan_audit_statements, plan_for_the_values, refresh_statistics,
};
pub use turns::turns_first;
pub use write::{write_transaction, write_transaction_with, Nesting, WriteTurn};

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbBackend = MultiBackend;
pub type DbPool = r2d2::Pool<ConnectionManager>;

/// Whether this is a SQLite connection: in-process, where a statement costs no round trip.
pub fn is_sqlite(conn: &DbConn) -> bool {
    matches!(conn, DbConn::Sqlite(_))
}

/// The rows for each of `keys`. On SQLite, `one` runs per key, a cached statement each: an
/// `IN` list's SQL changes with its length, so SQLite prepared it afresh at every call, and
/// stepping a prepared statement costs no round trip there. Elsewhere `all` runs once for
/// every key (on PostgreSQL, one array bind: `= ANY($1)`).
pub fn per_key<K, T>(
    conn: &mut DbConn,
    keys: &[K],
    mut one: impl FnMut(&mut DbConn, &K) -> QueryResult<Vec<T>>,
    all: impl FnOnce(&mut DbConn, &[K]) -> QueryResult<Vec<T>>,
) -> QueryResult<Vec<T>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if !is_sqlite(conn) {
        return all(conn, keys);
    }
    let mut rows = Vec::new();
    for key in keys {
        rows.extend(one(conn, key)?);
    }
    Ok(rows)
}

/// Runs blocking database work off the async workers: takes a connection from the pool inside
/// the blocking task, in the caller's tracing span. A pool timeout becomes 503.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, FhirError>
where
    F: FnOnce(&mut DbConn) -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        span.in_scope(|| {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
    })
    .await
    .map_err(|e| FhirError::Unavailable(format!("blocking pool: {e}")))?
}

/// Whether the database answers (for `/_health`).
pub fn ping(conn: &mut DbConn) -> bool {
    diesel::r2d2::R2D2Connection::ping(conn).is_ok()
}
