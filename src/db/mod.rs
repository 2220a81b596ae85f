//! Storage: one `DbConn` over SQLite and PostgreSQL, the r2d2 pool, migrations, and the async
//! boundary (`run`). Backend-specific SQL lives only in this module, in explicit `match` arms.

pub mod audit;
pub mod models;
pub mod outbox;
pub mod raw;
pub mod reports;
pub mod retention;
pub mod schema;
pub mod search;
pub mod store;
pub mod subscriptions;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::FhirError;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbBackend = MultiBackend;
pub type DbPool = r2d2::Pool<ConnectionManager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

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
fn configure_sqlite(conn: &mut SqliteConnection) -> QueryResult<()> {
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

/// Runs the embedded migrations for the connection's engine. On SQLite, also switches the
/// database to WAL (a persistent setting).
pub fn migrate(conn: &mut DbConn) -> Result<usize, String> {
    let applied = match conn {
        DbConn::Sqlite(c) => {
            diesel::sql_query("PRAGMA journal_mode = WAL")
                .execute(c)
                .map_err(|e| e.to_string())?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| e.to_string())?
                .len()
        }
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map_err(|e| e.to_string())?
            .len(),
    };
    Ok(applied)
}

/// Reverts every migration (used by the migration round-trip test).
pub fn revert_all(conn: &mut DbConn) -> Result<(), String> {
    match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    }
    .map_err(|e| e.to_string())
}

/// Reverts the newest migrations down to and including `name` (for testing what a migration
/// does to existing rows); returns how many were reverted.
pub fn revert_through(conn: &mut DbConn, name: &str) -> Result<usize, String> {
    let mut reverted = 0;
    loop {
        let version = match conn {
            DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
            DbConn::Postgres(c) => c.revert_last_migration(POSTGRES_MIGRATIONS),
        }
        .map_err(|e| e.to_string())?;
        reverted += 1;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let version = digits(&version.to_string());
        if !version.is_empty() && digits(name.split('_').next().unwrap_or_default()) == version {
            return Ok(reverted);
        }
    }
}

/// The migration names of both engines, in order (they must be identical).
pub fn migration_names() -> (Vec<String>, Vec<String>) {
    let names = |m: &EmbeddedMigrations| -> Vec<String> {
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(m)
            .unwrap_or_default()
            .iter()
            .map(|m| m.name().to_string())
            .collect()
    };
    (names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS))
}

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
/// turns here first, in the order they came. PostgreSQL locks rows, not the database.
static SQLITE_WRITERS: parking_lot::FairMutex<()> = parking_lot::const_fair_mutex(());

/// A turn held longer than this is logged, with where it was taken: every other writer (and so
/// every audited lookup) waited that long.
const LONG_TURN: Duration = Duration::from_secs(1);

/// A write turn. Dropping it gives the turn to the next writer.
pub struct WriteTurn {
    _guard: parking_lot::FairMutexGuard<'static, ()>,
    since: std::time::Instant,
    taken_at: &'static std::panic::Location<'static>,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
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
fn sqlite_write_turn_within(wait: Duration) -> Option<WriteTurn> {
    let taken_at = std::panic::Location::caller();
    SQLITE_WRITERS.try_lock_for(wait).map(|guard| WriteTurn {
        _guard: guard,
        since: std::time::Instant::now(),
        taken_at,
    })
}

fn in_transaction(c: &mut SqliteConnection) -> QueryResult<bool> {
    Ok(AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()?
        .is_some())
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

/// For the audit writer's own connection, which writes continuously.
///
/// On SQLite, it no longer checkpoints at its own commits — `start_checkpointer` does that
/// beside it, so no commit waits for a checkpoint. On PostgreSQL, see `plan_audit_statements`
/// (whose answer this returns).
pub fn configure_audit_writer(conn: &mut DbConn) -> QueryResult<bool> {
    if let DbConn::Sqlite(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(c, "PRAGMA wal_autocheckpoint = 0")?;
    }
    plan_audit_statements(conn)
}

/// Rows in each audit table (`audit_events`, `audit_las`), as PostgreSQL's statistics estimate
/// them, from which the audit writer's statements keep the plans PostgreSQL settles on.
const AUDIT_ROWS_FOR_KEPT_PLANS: f32 = 10_000.0;

#[derive(diesel::QueryableByName)]
struct RowEstimate {
    #[diesel(sql_type = diesel::sql_types::Float)]
    rows: f32,
}

/// Whether the audit writer's statements keep their plans (true), or are planned afresh at every
/// execution until the statistics describe audit tables of some size (false: ask again later).
///
/// They are prepared once and kept, and PostgreSQL settles on a generic plan after five runs:
/// one made from a new database's statistics of empty tables, a sequential scan, was kept
/// while they grew by thousands of rows a second (audited lookups at a fifth of the rate a
/// hand-run `ANALYZE` gave). Planning at every execution avoided that but cost 40% of the
/// writer's database time for ever. Once autovacuum has analysed tables of real size, the
/// generic plans use the indexes (and a later `ANALYZE` replaces them), so the writer then
/// keeps them all: left to choose, PostgreSQL still planned the `= ANY($1)` reads afresh at
/// nearly every execution. SQLite plans each statement as it prepares it: always true.
pub fn plan_audit_statements(conn: &mut DbConn) -> QueryResult<bool> {
    match conn {
        DbConn::Sqlite(_) => Ok(true),
        DbConn::Postgres(c) => {
            let known: RowEstimate = diesel::sql_query(
                "SELECT min(reltuples) AS rows FROM pg_class \
                 WHERE oid IN ('audit_events'::regclass, 'audit_las'::regclass)",
            )
            .get_result(c)?;
            let settled = known.rows >= AUDIT_ROWS_FOR_KEPT_PLANS;
            diesel::connection::SimpleConnection::batch_execute(
                c,
                if settled {
                    "SET plan_cache_mode = force_generic_plan"
                } else {
                    "SET plan_cache_mode = force_custom_plan"
                },
            )?;
            Ok(settled)
        }
    }
}

/// Plans every statement of the current transaction for the values it is given (PostgreSQL;
/// nothing on SQLite, which plans each statement as it is prepared). A cached statement
/// otherwise settles on a generic plan made from its first executions: an upload's
/// `id = ANY($1)` reads, planned while the tables were empty, scanned them from then on
/// (PostgreSQL's time in `texteq` against every id of every row). Bulk work pays a little
/// planning per statement instead; lookups keep their cached plans.
pub fn plan_for_the_values(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(_) => Ok(()),
        DbConn::Postgres(c) => diesel::connection::SimpleConnection::batch_execute(
            c,
            "SET LOCAL plan_cache_mode = force_custom_plan",
        ),
    }
}

/// The WAL size past which the checkpointer resets it (`RESTART`). A `PASSIVE` checkpoint
/// copies pages back but can never reset the WAL while some reader holds a snapshot, and under
/// steady lookups one always does: without this, the file grows without bound.
const WAL_RESET_BYTES: i64 = 16 * 1024 * 1024;
/// How long a `RESTART` checkpoint may hold writers back waiting for readers.
const RESET_WAIT_MS: u64 = 50;
/// How long a SQLite connection waits for a lock (`busy_timeout`).
const BUSY_TIMEOUT_MS: u64 = 5000;
/// SQLite's page size here (the default): a WAL frame is one page.
const PAGE_BYTES: i64 = 4096;

#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    /// WAL frames at the time of the checkpoint.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// One checkpoint: `PASSIVE` (never blocks the writer or readers); then, if the WAL has grown
/// past `WAL_RESET_BYTES`, `RESTART`, after which the next writer starts the WAL again from its
/// beginning, once the readers of the moment have finished. It holds back writers (the audit
/// writer, which every audited lookup waits on) while it waits for them and syncs, so it waits
/// only `RESET_WAIT_MS`: if readers are still busy, the next tick tries again. Not `TRUNCATE`:
/// cutting the file to nothing held the writers for 45–53 ms instead of 24–27 (the file's
/// blocks freed, then allocated again by the next writes), and that pause, every half second
/// under audited lookups, was their p99 (48 → 31 ms). `journal_size_limit` still bounds the
/// file on disk.
fn checkpoint(c: &mut SqliteConnection) -> QueryResult<()> {
    if passive_checkpoint(c)? * PAGE_BYTES > WAL_RESET_BYTES && !backup_under_way(c) {
        // It takes the write lock while it waits and copies: a turn like any writer's, so
        // writers queue fairly behind it instead of in SQLite's busy handler.
        maintenance_write(c, |c| {
            diesel::sql_query("PRAGMA wal_checkpoint(RESTART)")
                .execute(c)
                .map(|_| ())
        })?;
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct MainFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// Whether a backup (in any process) holds a snapshot of this database: a `RESTART` would
/// then hold the writers back waiting for a reader that stays until the copy ends, at every
/// tick, so the WAL is left to grow meanwhile (`crate::backup::marker`).
fn backup_under_way(c: &mut SqliteConnection) -> bool {
    diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<MainFile>(c)
        .is_ok_and(|main| crate::backup::marker::under_way(std::path::Path::new(&main.file)))
}

/// A `PASSIVE` checkpoint; returns the frames in the WAL.
fn passive_checkpoint(c: &mut SqliteConnection) -> QueryResult<i64> {
    let result: CheckpointResult =
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(c)?;
    Ok(i64::from(result.log))
}

/// Runs housekeeping that writes (a RESTART checkpoint, `PRAGMA optimize`) without ever
/// holding writers back for long: it takes a write turn only if one comes within
/// `RESET_WAIT_MS`, and waits on SQLite's locks no longer than that either; otherwise it is
/// skipped (Ok), for the next tick or upload to try again. Every audited lookup waits on the
/// writers, so a maintenance task that waited out the busy timeout in its turn stalled them all
/// (a 5.6 s stall in the soak, issue #10).
#[track_caller]
fn maintenance_write(
    c: &mut SqliteConnection,
    work: impl FnOnce(&mut SqliteConnection) -> QueryResult<()>,
) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    let Some(_turn) = sqlite_write_turn_within(Duration::from_millis(RESET_WAIT_MS)) else {
        return Ok(()); // writers are busy: the next tick tries again
    };
    c.batch_execute(&format!("PRAGMA busy_timeout = {RESET_WAIT_MS}"))?;
    let done = work(c);
    c.batch_execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))?;
    match done {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            info,
        )) if info.message().contains("locked") || info.message().contains("busy") => {
            tracing::debug!("housekeeping write skipped: the database is busy");
            Ok(())
        }
        other => other,
    }
}

/// At a graceful stop: everything into the database file, and the WAL emptied.
pub fn checkpoint_at_stop(pool: &DbPool) {
    if let Ok(mut conn) = pool.get() {
        if let DbConn::Sqlite(c) = &mut **conn {
            if let Err(e) = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(c) {
                tracing::warn!(error = %e, "final WAL checkpoint failed");
            }
        }
    }
}

/// On SQLite, checkpoints the WAL every half second on its own thread (`checkpoint`: bounded
/// size under any read load), until `alive` is gone.
/// Nothing to do on PostgreSQL.
pub fn start_checkpointer(
    pool: DbPool,
    alive: std::sync::Weak<tokio::sync::Notify>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cpis-checkpoint".into())
        .spawn(move || {
            const TICK: Duration = Duration::from_millis(500);
            while alive.upgrade().is_some() {
                std::thread::sleep(TICK);
                // Only a spare connection: a checkpoint never makes a request wait for one.
                let Some(mut conn) = pool.try_get() else {
                    continue;
                };
                let done = match &mut **conn {
                    DbConn::Sqlite(c) => checkpoint(c),
                    DbConn::Postgres(_) => return,
                };
                if let Err(e) = done {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        })
        .map(|_| ())
}

/// Gives the planner statistics at start, without anyone running `ANALYZE` by hand: on SQLite,
/// `PRAGMA optimize` analyses the tables that have none or have grown tenfold since. Only at
/// start: this SQLite gathers STAT4 samples, which reads whole indexes whatever
/// `analysis_limit` says, and run after uploads on a register of millions of accesses it held
/// every writer back for 5 to 8 s (the soak, issue #10). Nothing depends on it: the lookups and
/// the audit writer are shaped to use their indexes on a database never analysed
/// (`tests/api/query_plans.rs`). PostgreSQL's autovacuum analyses tables as they grow. A
/// failure is logged only.
pub fn refresh_statistics(conn: &mut DbConn) {
    let done = match conn {
        // ANALYZE writes (sqlite_stat1): housekeeping that gives way to the writers.
        DbConn::Sqlite(c) => maintenance_write(c, |c| {
            diesel::connection::SimpleConnection::batch_execute(
                c,
                "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;",
            )
        }),
        DbConn::Postgres(_) => Ok(()),
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, "refreshing planner statistics failed");
    }
}

/// Whether the database answers (for `/_health`).
pub fn ping(conn: &mut DbConn) -> bool {
    diesel::r2d2::R2D2Connection::ping(conn).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_in(dir: &std::path::Path) -> SqliteConnection {
        use diesel::connection::SimpleConnection;
        let mut c = SqliteConnection::establish(&format!("{}/wal.db", dir.display())).unwrap();
        configure_sqlite(&mut c).unwrap();
        c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        c
    }

    /// Under steady lookups some reader always holds a snapshot and the audit writer commits
    /// all the time, so a `PASSIVE` checkpoint (and SQLite's own restart of a fully copied WAL)
    /// never gets the WAL started again: it grew without bound. With a writer committing and
    /// readers reading without pause, the checkpointer keeps it within `journal_size_limit`.
    #[test]
    fn the_checkpointer_keeps_the_wal_bounded_under_steady_reads_and_writes() {
        use diesel::connection::SimpleConnection;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        sqlite_in(&path)
            .batch_execute("CREATE TABLE filler (bytes BLOB NOT NULL)")
            .unwrap();
        let running = std::sync::Arc::new(AtomicBool::new(true));
        let worker = |work: fn(&mut SqliteConnection)| {
            let (path, running) = (path.clone(), running.clone());
            std::thread::spawn(move || {
                let mut c = sqlite_in(&path);
                while running.load(Ordering::Relaxed) {
                    work(&mut c);
                }
            })
        };
        let threads = [
            worker(|c| {
                // About the audit writer's pace: ~70 MB of WAL a second.
                c.batch_execute("INSERT INTO filler VALUES (zeroblob(3000))")
                    .unwrap();
                std::thread::sleep(Duration::from_micros(100));
            }),
            worker(|c| {
                c.batch_execute("BEGIN; SELECT max(rowid) FROM filler;")
                    .unwrap();
                std::thread::sleep(Duration::from_micros(300));
                c.batch_execute("COMMIT").unwrap();
            }),
            worker(|c| {
                c.batch_execute("BEGIN; SELECT count(*) FROM filler WHERE rowid < 10;")
                    .unwrap();
                std::thread::sleep(Duration::from_micros(500));
                c.batch_execute("COMMIT").unwrap();
            }),
        ];
        let mut checkpointer = sqlite_in(&path);
        let wal = path.join("wal.db-wal");
        let started = std::time::Instant::now();
        let mut largest = 0;
        while started.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(100));
            checkpoint(&mut checkpointer).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        running.store(false, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let written = passive_checkpoint(&mut checkpointer).unwrap();
        assert!(
            largest < 64 * 1024 * 1024,
            "the WAL stayed within journal_size_limit: at most {largest} bytes ({written} frames now)"
        );
    }

    /// The checkpointer finds the marker of a backup of its own database (where SQLite says
    /// the file is), and only while the backup runs: it then leaves `RESTART` alone.
    #[test]
    fn the_checkpointer_sees_a_backup_of_its_database_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sqlite_in(dir.path());
        assert!(!backup_under_way(&mut c));
        let beacon = crate::backup::marker::Beacon::start(
            &dir.path().join("wal.db"),
            &dir.path().join("copy"),
            indicatif::ProgressBar::hidden(),
        );
        assert!(backup_under_way(&mut c));
        let other = crate::backup::marker::Beacon::start(
            &dir.path().join("other.db"),
            &dir.path().join("copy2"),
            indicatif::ProgressBar::hidden(),
        );
        drop(beacon);
        assert!(!backup_under_way(&mut c), "another database's backup");
        drop(other);
    }

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

    #[test]
    fn both_engines_have_the_same_migrations() {
        let (sqlite, postgres) = migration_names();
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres);
    }
}
