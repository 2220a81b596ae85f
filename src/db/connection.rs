//! Connections: which engine a URL names, each connection's settings, and the r2d2 pool.

use std::time::Duration;

use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

use super::{is_sqlite, DbConn, DbPool};

/// How long a SQLite connection waits for a lock (`busy_timeout`).
pub(super) const BUSY_TIMEOUT_MS: u64 = 5000;

/// Which engine a `CPIS_DATABASE_URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A file path (relative or absolute).
    Sqlite(String),
    Postgres(String),
}

impl Backend {
    /// Accepts only `sqlite://path` and `postgres(ql)://…`: SQLite would accept any string as a
    /// file name, so anything else fails loudly here.
    pub fn from_url(url: &str) -> Result<Backend, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("sqlite:// URL without a path".into());
            }
            Ok(Backend::Sqlite(path.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(url.to_string()))
        } else {
            Err(format!(
                "unsupported database URL scheme in {:?}: use sqlite:// or postgres://",
                url.split("://").next().unwrap_or_default()
            ))
        }
    }

    /// Whether several write transactions can run at once usefully: PostgreSQL locks rows,
    /// SQLite has one writer.
    pub fn writes_in_parallel(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    fn establish(&self) -> ConnectionResult<DbConn> {
        match self {
            Backend::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                configure_sqlite(&mut conn)
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
            Backend::Postgres(url) => connect_postgres(url).map(DbConn::Postgres),
        }
    }
}

/// Opens a PostgreSQL connection: every one the process makes goes through here.
///
/// libpq speaks TLS through OpenSSL, and OpenSSL, when it initialises itself on first use,
/// registers `OPENSSL_cleanup` with `atexit`. At exit that frees the per-thread state of
/// threads that are still running or ending (the pool's, the audit writer's, a runtime's), and
/// the process aborts after its work is done ("free(): invalid pointer" in
/// `init_thread_deregister`: the PostgreSQL suite in CI). Initialising OpenSSL here first, as
/// rust-openssl does, sets `OPENSSL_INIT_NO_ATEXIT`; the memory goes back with the process.
pub fn connect_postgres(url: &str) -> ConnectionResult<PgConnection> {
    openssl_sys::init();
    PgConnection::establish(url)
}

/// The most heap SQLite should use, all connections together (its page caches give way).
const SQLITE_HEAP_LIMIT: i64 = 16 * 1024 * 1024;

/// Per-connection SQLite settings. WAL is persistent and set once, at migration.
pub(super) fn configure_sqlite(conn: &mut SqliteConnection) -> QueryResult<()> {
    diesel::sql_query(format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")).execute(conn)?;
    diesel::sql_query("PRAGMA foreign_keys = ON").execute(conn)?;
    diesel::sql_query("PRAGMA synchronous = NORMAL").execute(conn)?;
    // 2 MiB of page cache per connection (the pool's and the audit writer's): enough for the
    // lookup indexes' upper levels (the OS caches the rest of the file).
    diesel::sql_query("PRAGMA cache_size = -2048").execute(conn)?;
    // And at most SQLITE_HEAP_LIMIT for all of them together (process-wide; past it the page
    // caches recycle pages instead of growing). The pool hands out the connection returned
    // last, so the deeper ones are used, and fill, only in bursts: without a common bound the
    // caches grow for half an hour after start, and again whenever the pool replaces an idle
    // connection (the soak, issue #10).
    diesel::sql_query(format!("PRAGMA soft_heap_limit = {SQLITE_HEAP_LIMIT}")).execute(conn)?;
    // Once a checkpoint has reset the WAL, it is cut back to this size on disk.
    diesel::sql_query("PRAGMA journal_size_limit = 67108864").execute(conn)?;
    // Checkpoint every ~16 MiB of WAL instead of 4 MiB: audit writes touch the same index
    // pages again and again, and each checkpoint writes a page once however often it changed.
    diesel::sql_query("PRAGMA wal_autocheckpoint = 4000").execute(conn)?;
    Ok(())
}

/// r2d2 manager that establishes by URL scheme and, on PostgreSQL, pings a connection that
/// has sat idle before handing it out.
pub struct ConnectionManager {
    backend: Backend,
}

/// A pooled connection, with when it was last handed back.
pub struct PooledDb {
    conn: DbConn,
    returned: std::time::Instant,
}

impl std::ops::Deref for PooledDb {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for PooledDb {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

/// A PostgreSQL connection handed back longer ago than this is pinged before it is handed out
/// again (a server restart or a dropped TCP session is found before a request meets it). One in
/// steady use is not: the ping was a round trip on every request (a sixth of a lookup's).
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Whether a connection idle for `idle` may be used without opening a new one: on PostgreSQL,
/// one idle longer than `IDLE_BEFORE_PING` must answer a ping. (SQLite's are files.)
pub fn still_usable(conn: &mut DbConn, idle: Duration) -> bool {
    is_sqlite(conn) || idle < IDLE_BEFORE_PING || diesel::r2d2::R2D2Connection::ping(conn).is_ok()
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = PooledDb;
    type Error = ConnectionError;

    fn connect(&self) -> Result<PooledDb, ConnectionError> {
        Ok(PooledDb {
            conn: self.backend.establish()?,
            returned: std::time::Instant::now(),
        })
    }

    fn is_valid(&self, pooled: &mut PooledDb) -> Result<(), ConnectionError> {
        if still_usable(&mut pooled.conn, pooled.returned.elapsed()) {
            Ok(())
        } else {
            Err(ConnectionError::BadConnection(
                "the database no longer answers this connection".into(),
            ))
        }
    }

    fn has_broken(&self, pooled: &mut PooledDb) -> bool {
        // Called as the connection is handed back.
        pooled.returned = std::time::Instant::now();
        diesel::r2d2::R2D2Connection::is_broken(&mut pooled.conn)
    }
}

/// Who the pool serves.
pub enum PoolUse {
    /// A command that runs and exits (`cpis migrate`, `import`, `purge`): connections opened
    /// as needed, none in the background (a process that exits while a background thread is
    /// inside a TLS handshake crashes in OpenSSL's exit handlers).
    Command,
    /// The server, with its checkouts and timeouts reported to `events` (the metrics).
    Server(Option<Box<dyn r2d2::HandleEvent>>),
}

/// Builds the pool for a command. Connections are opened lazily, so it builds while the
/// database is down.
pub fn pool(url: &str, size: u32, timeout: Duration) -> Result<DbPool, String> {
    pool_for(url, size, timeout, PoolUse::Command)
}

/// Builds the pool. Connections are opened in the background (`build_unchecked`), so the
/// server can start, and answer 503, while the database is down.
pub fn pool_for(url: &str, size: u32, timeout: Duration, usage: PoolUse) -> Result<DbPool, String> {
    let backend = Backend::from_url(url)?;
    if let Backend::Sqlite(path) = &backend {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
        }
    }
    // A server on PostgreSQL keeps its pool full. Opened on demand, a connection (with its TLS
    // session and libpq buffers) was added only at a rare peak of concurrency, such as an upload
    // holding one for seconds: the process grew for many minutes after start without a leak, and
    // requests paid for TLS handshakes under load (the soak, issue #10: capacity 301 → 696
    // audited lookups/s). A fixed pool is also what the database's `max_connections` is sized
    // for. SQLite's connections are files and page caches: one is kept, the rest as needed.
    let (min_idle, events) = match (&backend, usage) {
        (Backend::Postgres(_), PoolUse::Server(events)) => (size.max(1), events),
        (_, PoolUse::Server(events)) => (1, events),
        (_, PoolUse::Command) => (0, None),
    };
    let mut builder = r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(min_idle))
        .connection_timeout(timeout)
        .test_on_check_out(true);
    if let Some(events) = events {
        builder = builder.event_handler(events);
    }
    Ok(builder.build_unchecked(ConnectionManager { backend }))
}

/// A connection of its own, outside the pool (for the audit writer, which keeps one).
pub fn connect(url: &str) -> Result<DbConn, String> {
    Backend::from_url(url)?
        .establish()
        .map_err(|e| format!("cannot connect: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_recognised_by_scheme_only() {
        assert_eq!(
            Backend::from_url("sqlite://cpis.db"),
            Ok(Backend::Sqlite("cpis.db".into()))
        );
        assert_eq!(
            Backend::from_url("sqlite:///var/lib/cpis.db"),
            Ok(Backend::Sqlite("/var/lib/cpis.db".into()))
        );
        assert!(matches!(
            Backend::from_url("postgres://u@h/db"),
            Ok(Backend::Postgres(_))
        ));
        assert!(Backend::from_url("cpis.db").is_err());
        assert!(Backend::from_url("mysql://h/db").is_err());
        assert!(Backend::from_url("sqlite://").is_err());
    }
}
