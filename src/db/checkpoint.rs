//! The SQLite checkpointer: keeps the WAL bounded under steady reads and writes, and the
//! housekeeping writes that give way to the writers.

use std::time::Duration;

use diesel::prelude::*;
use diesel::SqliteConnection;

use super::connection::BUSY_TIMEOUT_MS;
use super::write::sqlite_write_turn_within;
use super::{DbConn, DbPool};

/// The WAL size past which the checkpointer resets it (`RESTART`). A `PASSIVE` checkpoint
/// copies pages back but can never reset the WAL while some reader holds a snapshot, and under
/// steady lookups one always does: without this, the file grows without bound.
const WAL_RESET_BYTES: i64 = 16 * 1024 * 1024;
/// How long a `RESTART` checkpoint may hold writers back waiting for readers.
const RESET_WAIT_MS: u64 = 50;
/// SQLite's page size here (the default): a WAL frame is one page.
const PAGE_BYTES: i64 = 4096;
/// The longest and shortest pause between checkpoints. Short even when the WAL grows slowly:
/// a burst after a quiet spell must not find the next checkpoint far off.
const TICK: Duration = Duration::from_millis(100);
const SHORTEST_TICK: Duration = Duration::from_millis(20);

#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    /// 1 if the checkpoint could not finish (a `RESTART` then has not reset the WAL).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    /// WAL frames at the time of the checkpoint (-1 if it could not run).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// What a checkpoint found: the frames in the WAL, and whether it reset the WAL (the next
/// writer starts it again from its beginning).
#[derive(Debug, Clone, Copy)]
struct Checkpointed {
    frames: i64,
    reset: bool,
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
fn checkpoint(c: &mut SqliteConnection) -> QueryResult<Checkpointed> {
    let frames = passive_checkpoint(c)?;
    let mut reset = false;
    if frames * PAGE_BYTES > WAL_RESET_BYTES && !backup_under_way(c) {
        // It takes the write lock while it waits and copies: a turn like any writer's, so
        // writers queue fairly behind it instead of in SQLite's busy handler.
        maintenance_write(c, |c| {
            let done: CheckpointResult =
                diesel::sql_query("PRAGMA wal_checkpoint(RESTART)").get_result(c)?;
            reset = done.busy == 0;
            Ok(())
        })?;
    }
    Ok(Checkpointed { frames, reset })
}

/// Paces the checkpoints to the writing: the pause until the next one is how long the WAL
/// takes to grow by half of `WAL_RESET_BYTES` at the pace it grew since the last, within
/// `SHORTEST_TICK..=TICK`. At a fixed half second, audited lookups flat out on a fast machine
/// wrote ~90 MiB of WAL between two checkpoints (the file reached 108 MiB against the 64 MiB
/// `journal_size_limit`); paced, it is reset before it grows much past `WAL_RESET_BYTES`.
#[derive(Debug, Default)]
struct Pace {
    /// The WAL's frames after the last checkpoint (0 once it was reset).
    frames_after_last: i64,
}

impl Pace {
    /// The pause after a checkpoint that found `done`, `since` the one before.
    fn next(&mut self, done: Checkpointed, since: Duration) -> Duration {
        if done.frames < 0 {
            return TICK; // the checkpoint could not run: nothing learnt
        }
        // A WAL with fewer frames than last time was started again by a writer meanwhile.
        let grown = if done.frames >= self.frames_after_last {
            done.frames - self.frames_after_last
        } else {
            done.frames
        };
        self.frames_after_last = if done.reset { 0 } else { done.frames };
        let bytes_per_s = (grown * PAGE_BYTES) as f64 / since.as_secs_f64().max(1e-3);
        if bytes_per_s <= 0.0 {
            return TICK;
        }
        Duration::from_secs_f64((WAL_RESET_BYTES / 2) as f64 / bytes_per_s)
            .clamp(SHORTEST_TICK, TICK)
    }
}

#[derive(diesel::QueryableByName)]
struct MainFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// Whether a backup (in any process) holds a snapshot of this database: a `RESTART` would
/// then hold the writers back waiting for a reader that stays until the copy ends, at every
/// tick, so the WAL is left to grow meanwhile (`backup_marker`).
fn backup_under_way(c: &mut SqliteConnection) -> bool {
    diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<MainFile>(c)
        .is_ok_and(|main| crate::db::backup_marker::under_way(std::path::Path::new(&main.file)))
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
pub(super) fn maintenance_write(
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

/// How long the final checkpoint keeps trying while another holds it up.
const FINAL_CHECKPOINT_TRIES: u32 = 200;

/// At a graceful stop: everything into the database file, and the WAL emptied. A checkpoint
/// cannot run while another does (the checkpointer's, which may still be at work) and cannot
/// empty the WAL while a reader holds a snapshot: SQLite then answers busy, and it tries again
/// (every 10 ms, for up to two seconds).
pub fn checkpoint_at_stop(pool: &DbPool) {
    let Ok(mut conn) = pool.get() else {
        return;
    };
    let DbConn::Sqlite(c) = &mut **conn else {
        return;
    };
    for _ in 0..FINAL_CHECKPOINT_TRIES {
        match diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result::<CheckpointResult>(c)
        {
            Ok(done) if done.busy == 0 => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                tracing::warn!(error = %e, "final WAL checkpoint failed");
                return;
            }
        }
    }
    tracing::warn!("final WAL checkpoint still held up after two seconds: the WAL is kept");
}

/// On SQLite, checkpoints the WAL on its own thread, at the pace the WAL grows (`Pace`), so
/// its size stays bounded under any load (`checkpoint`), until `alive` is gone.
/// Nothing to do on PostgreSQL.
pub fn start_checkpointer(
    pool: DbPool,
    alive: std::sync::Weak<tokio::sync::Notify>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cpis-checkpoint".into())
        .spawn(move || {
            // A reset waits for no upload part: the WAL stays bounded under a daily upload.
            super::turns::turns_first();
            let postgres = std::cell::Cell::new(false);
            checkpoint_paced(
                || !postgres.get() && alive.upgrade().is_some(),
                || {
                    // Only a spare connection: a checkpoint never makes a request wait for one.
                    let mut conn = pool.try_get()?;
                    match &mut **conn {
                        DbConn::Sqlite(c) => Some(checkpoint(c)),
                        DbConn::Postgres(_) => {
                            postgres.set(true);
                            None
                        }
                    }
                },
            );
        })
        .map(|_| ())
}

/// While `go` holds: a pause (`Pace`), then a checkpoint by `checkpoint_now` (None: skipped).
fn checkpoint_paced(
    mut go: impl FnMut() -> bool,
    mut checkpoint_now: impl FnMut() -> Option<QueryResult<Checkpointed>>,
) {
    let (mut pace, mut pause, mut last) = (Pace::default(), TICK, std::time::Instant::now());
    while go() {
        std::thread::sleep(pause);
        let Some(done) = checkpoint_now() else {
            continue;
        };
        match done {
            Ok(done) => pause = pace.next(done, last.elapsed()),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        last = std::time::Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::connection::configure_sqlite;

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
    /// readers reading without pause, the paced checkpoints keep it within `journal_size_limit`.
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
        checkpoint_paced(
            || {
                largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                started.elapsed() < Duration::from_secs(3)
            },
            // A failing checkpoint fails the test (the thread's loop only logs it).
            || Some(Ok(checkpoint(&mut checkpointer).unwrap())),
        );
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

    /// Checkpoints come as often as it takes for the WAL to grow by about half the reset size
    /// between two, within `SHORTEST_TICK..=TICK`.
    #[test]
    fn checkpoints_are_paced_to_how_fast_the_wal_grows() {
        let half_reset_frames = WAL_RESET_BYTES / 2 / PAGE_BYTES;
        let at = |frames, reset| Checkpointed { frames, reset };
        let mut pace = Pace::default();
        // Half the reset size in 50 ms: next in 50 ms.
        let pause = pace.next(at(half_reset_frames, false), Duration::from_millis(50));
        assert!(
            pause.abs_diff(Duration::from_millis(50)) < Duration::from_millis(2),
            "{pause:?}"
        );
        // Ten times that pace: the shortest pause.
        let pause = pace.next(at(half_reset_frames * 11, true), Duration::from_millis(50));
        assert_eq!(pause, SHORTEST_TICK);
        // Reset last time: what it holds now was all written since.
        let pause = pace.next(
            at(half_reset_frames / 10, false),
            Duration::from_millis(500),
        );
        assert_eq!(pause, TICK);
        // Nothing written, or a checkpoint that could not run: the longest pause.
        assert_eq!(
            pace.next(
                at(half_reset_frames / 10, false),
                Duration::from_millis(500)
            ),
            TICK
        );
        assert_eq!(pace.next(at(-1, false), Duration::from_millis(500)), TICK);
    }

    /// The checkpointer finds the marker of a backup of its own database (where SQLite says
    /// the file is), and only while the backup runs: it then leaves `RESTART` alone.
    #[test]
    fn the_checkpointer_sees_a_backup_of_its_database_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sqlite_in(dir.path());
        assert!(!backup_under_way(&mut c));
        let beacon = crate::db::backup_marker::Beacon::start(
            &dir.path().join("wal.db"),
            &dir.path().join("copy"),
            indicatif::ProgressBar::hidden(),
        );
        assert!(backup_under_way(&mut c));
        let other = crate::db::backup_marker::Beacon::start(
            &dir.path().join("other.db"),
            &dir.path().join("copy2"),
            indicatif::ProgressBar::hidden(),
        );
        drop(beacon);
        assert!(!backup_under_way(&mut c), "another database's backup");
        drop(other);
    }
}
