//! The audit writer: one thread with group commit. Requests hand their accesses over a bounded
//! channel and wait; the thread takes everything queued, writes it in one transaction (with the
//! notification outbox rows) and then answers every waiter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::{oneshot, Notify};

use crate::attendance::AttendanceRule;
use crate::db::audit::{self, NewAccess, StoredAccess};
use crate::db::{write_transaction, DbConn};
use crate::error::FhirError;
use crate::metrics::Metrics;

use super::accesses::PendingAccess;
use super::decide::{decide, delivers, Recorded, COLLAPSE_MS};

/// Accesses waiting beyond this many make new requests 503 rather than queue without bound.
const QUEUE_CAPACITY: usize = 8192;
/// The most accesses one transaction takes.
const MAX_BATCH: usize = 1024;
/// How often the writer asks again whether its statements may keep their plans
/// (`db::plan_audit_statements`, which analyses the audit tables once they have grown) while
/// they may not: two catalogue reads, so often enough that a new database's writer settles
/// within seconds of the tables' growing.
const ASK_PLANS_AGAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// When this process's audit writer last took a batch.
static LAST_BATCH: LastBatch = LastBatch::never();
static EPOCH: OnceLock<Instant> = OnceLock::new();
/// How recent a batch must be for accesses to count as being recorded.
const RECORDING_LATELY_MS: u64 = 100;

/// Milliseconds since `EPOCH`, from 1.
fn since_epoch_ms() -> u64 {
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(elapsed).unwrap_or(u64::MAX).saturating_add(1)
}

/// When a batch was last taken, in milliseconds since `EPOCH` (0: never).
struct LastBatch(AtomicU64);

impl LastBatch {
    const fn never() -> LastBatch {
        LastBatch(AtomicU64::new(0))
    }

    fn taken(&self, at_ms: u64) {
        self.0.store(at_ms, Ordering::Relaxed);
    }

    fn lately(&self, now_ms: u64) -> bool {
        let last = self.0.load(Ordering::Relaxed);
        last != 0 && now_ms.saturating_sub(last) < RECORDING_LATELY_MS
    }
}

/// Whether audited accesses are being recorded: this process's audit writer took a batch
/// within the last tenth of a second. Long writers (an upload) then give way to the lookups
/// that wait on it, on either engine.
pub fn accesses_being_recorded() -> bool {
    LAST_BATCH.lately(since_epoch_ms())
}

type Reply = oneshot::Sender<Result<(), String>>;
type Job = (Vec<PendingAccess>, Reply);

/// The handle requests use to record accesses.
#[derive(Clone)]
pub struct Auditor {
    queue: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

impl Auditor {
    /// Starts the writer thread. `delivery` is woken whenever notifications were queued.
    /// The writer keeps a connection of its own to `database_url`, outside the pool.
    pub fn start(
        database_url: String,
        delivery: Arc<Notify>,
        attendance: AttendanceRule,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Auditor> {
        let (queue, jobs) = mpsc::sync_channel(QUEUE_CAPACITY);
        let observed = metrics.clone();
        std::thread::Builder::new()
            .name("cpis-audit-writer".into())
            .spawn(move || write_loop(&database_url, &jobs, &delivery, attendance, &observed))?;
        Ok(Auditor { queue, metrics })
    }

    /// Records `accesses` and returns once they are committed.
    pub(super) async fn record(&self, accesses: Vec<PendingAccess>) -> Result<(), FhirError> {
        if accesses.is_empty() {
            return Ok(());
        }
        let (reply, committed) = oneshot::channel();
        match self.queue.try_send((accesses, reply)) {
            Ok(()) => self.metrics.audit_queue_depth.inc(),
            Err(TrySendError::Full(_)) => {
                return Err(FhirError::Unavailable("the audit queue is full".into()))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(FhirError::Unavailable(
                    "the audit writer has stopped".into(),
                ))
            }
        }
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(cause)) => Err(FhirError::Unavailable(format!(
                "audit not recorded: {cause}"
            ))),
            Err(_) => Err(FhirError::Unavailable(
                "the audit writer has stopped".into(),
            )),
        }
    }
}

fn write_loop(
    database_url: &str,
    jobs: &Receiver<Job>,
    delivery: &Notify,
    attendance: AttendanceRule,
    metrics: &Metrics,
) {
    // Every audited lookup waits on this thread's commits: its SQLite write turns come first.
    crate::db::turns_first();
    // One connection kept for the writer's life: as the only writer, its page cache stays
    // valid between batches (a connection that sees another's commit must drop its cache).
    let mut held: Option<(DbConn, std::time::Instant)> = None;
    // Until its statements may keep their plans (`db::plan_audit_statements`), asked again
    // now and then.
    let mut plans_asked: Option<std::time::Instant> = None;
    while let Ok(first) = jobs.recv() {
        LAST_BATCH.taken(since_epoch_ms());
        let mut batch = vec![first];
        let mut size = batch.iter().map(|(a, _)| a.len()).sum::<usize>();
        while size < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    size += job.0.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        metrics
            .audit_queue_depth
            .sub(i64::try_from(batch.len()).unwrap_or(i64::MAX));
        let started = std::time::Instant::now();
        // A connection the database dropped while the writer was idle (a restart, a network
        // timeout) is replaced before a batch meets it.
        let kept = held.take().and_then(|(mut conn, last)| {
            crate::db::still_usable(&mut conn, last.elapsed()).then_some(conn)
        });
        let conn = match kept {
            Some(conn) => Ok(conn),
            None => fresh_connection(database_url).map(|(conn, settled)| {
                plans_asked = (!settled).then(std::time::Instant::now);
                conn
            }),
        };
        let outcome = match conn {
            Err(e) => Err(e),
            Ok(mut conn) => {
                if plans_asked.is_some_and(|at| at.elapsed() > ASK_PLANS_AGAIN) {
                    plans_asked = match crate::db::plan_audit_statements(&mut conn) {
                        Ok(true) => None,
                        _ => Some(std::time::Instant::now()),
                    };
                }
                let written = write_batch(&mut conn, &batch, attendance);
                if written.is_ok() {
                    held = Some((conn, std::time::Instant::now()));
                }
                written
            }
        };
        metrics.audit_batch_accesses.observe(size as f64);
        metrics
            .audit_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        match &outcome {
            Ok(queued) if *queued > 0 => delivery.notify_one(),
            Ok(_) => {}
            Err(cause) => tracing::error!(error = %cause, accesses = size, "audit batch failed"),
        }
        for (_, reply) in batch {
            let _ = reply.send(outcome.as_ref().map(|_| ()).map_err(Clone::clone));
        }
    }
}

/// A new connection for the writer, and whether its statements may keep their plans.
fn fresh_connection(database_url: &str) -> Result<(DbConn, bool), String> {
    let mut conn = crate::db::connect(database_url)?;
    let settled = crate::db::configure_audit_writer(&mut conn).map_err(|e| e.to_string())?;
    Ok((conn, settled))
}

/// Writes a batch in one transaction; returns how many notifications it queued.
///
/// Every access of the batch is stamped (`recorded`, `meta.lastUpdated`) inside the transaction,
/// after it has taken the audit write lock, later than anything committed before. So commit
/// order is stamp order, on one server or several: an LA that pulls with `_lastUpdated=gt` the
/// newest stamp it has received can never miss an access committed after its pull.
///
/// The batch costs a fixed number of statements whatever its size (on PostgreSQL each is a
/// round trip): what was recorded before is read once for all its children, each access is
/// decided in order in memory (seeing the batch's earlier accesses as the database would have
/// shown them), and the rows go in as multi-row statements.
fn write_batch(
    conn: &mut DbConn,
    batch: &[Job],
    attendance: AttendanceRule,
) -> Result<usize, String> {
    let accesses = || batch.iter().flat_map(|(accesses, _)| accesses);
    let requested = accesses().map(|a| a.requested_ms).max().unwrap_or_default();
    write_transaction(conn, |conn| {
        let stamp = audit::lock_and_stamp(conn, requested)?;
        let mut rows: Vec<NewAccess> = accesses().map(|a| a.row(stamp)).collect();
        let recorded = Recorded::read(conn, &rows, stamp, attendance)?;
        let showings = decide(&mut rows, &recorded, stamp, attendance);
        let las: Vec<audit::LaShowing<'_>> = rows
            .iter()
            .zip(&showings)
            .flat_map(|(access, showing)| {
                access.la_ods.iter().map(|la| audit::LaShowing {
                    audit_event_id: &access.row.id,
                    la_ods: la,
                    shown: showing.to_las.contains(la),
                    pattern_marked: showing.marked_las.contains(la),
                })
            })
            .collect();
        let stored: Vec<&StoredAccess> = rows.iter().map(|a| &a.row).collect();
        audit::insert_all(conn, &stored, &las, stamp)?;
        queue_notifications(conn, &las, stamp)
    })
    .map_err(|e| e.to_string())
}

/// Read once a batch, for all its reportable accesses' children.
impl Recorded {
    fn read(
        conn: &mut DbConn,
        rows: &[NewAccess],
        stamp: i64,
        rule: AttendanceRule,
    ) -> diesel::QueryResult<Recorded> {
        let mut children: Vec<&str> = rows
            .iter()
            .filter(|a| a.reportable)
            .map(|a| a.row.nhs_number.as_str())
            .collect();
        children.sort_unstable();
        children.dedup();
        let collapse_since = stamp - COLLAPSE_MS;
        let attendance_since = rule.since_ms(stamp);
        let earlier =
            audit::accesses_that_decide(conn, &children, collapse_since.min(attendance_since))?;
        // Every unscheduled view is an attendance, the collapsed ones too (SPEC §3): each
        // (setting, hour) counted from the access that opened it.
        let attendances = earlier
            .iter()
            .filter(|v| v.opens_attendance_hour && v.recorded_ms >= attendance_since)
            .map(|v| {
                (
                    v.nhs_number.clone(),
                    v.agent_org.clone(),
                    audit::hour_of(v.recorded_ms),
                )
            })
            .collect();
        let in_pattern: Vec<&audit::RecentView> = earlier
            .iter()
            .filter(|v| v.recorded_ms >= attendance_since)
            .filter(|v| v.told_las && v.attendance_pattern == Some(true))
            .collect();
        // Other people's views of these children count only for the attendances.
        let views: Vec<audit::RecentView> = earlier
            .iter()
            .filter(|v| {
                v.recorded_ms > collapse_since
                    && (v.shown || v.told_las)
                    && rows.iter().any(|a| {
                        a.reportable
                            && a.row.nhs_number == v.nhs_number
                            && a.row.agent_sub == v.agent_sub
                            && a.row.agent_org == v.agent_org
                    })
            })
            .cloned()
            .collect();
        let mut seqs: Vec<i64> = views
            .iter()
            .chain(in_pattern.iter().copied())
            .map(|v| v.seq)
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let las_shown = audit::las_shown(conn, &seqs)?;
        let pattern_told = in_pattern
            .iter()
            .flat_map(|v| {
                las_shown
                    .iter()
                    .filter(move |(seq, _)| *seq == v.seq)
                    .map(move |(_, la)| (v.nhs_number.clone(), la.clone()))
            })
            .collect();
        Ok(Recorded {
            las_shown,
            attendances,
            pattern_told,
            views,
        })
    }
}

/// Queues a notification of each access to every Subscription of each LA it was shown to;
/// returns how many.
fn queue_notifications(
    conn: &mut DbConn,
    las: &[audit::LaShowing<'_>],
    stamp: i64,
) -> diesel::QueryResult<usize> {
    let mut told: Vec<&str> = las.iter().filter(|l| l.shown).map(|l| l.la_ods).collect();
    told.sort_unstable();
    told.dedup();
    let subscriptions = audit::subscriptions_of(conn, &told)?;
    let notifications: Vec<(&str, &str)> = las
        .iter()
        .filter(|l| l.shown)
        .flat_map(|l| {
            subscriptions
                .iter()
                .filter(move |(la, _, status)| la == l.la_ods && delivers(status))
                .map(move |(_, id, _)| (l.audit_event_id, id.as_str()))
        })
        .collect();
    audit::queue_notifications(conn, &notifications, stamp)?;
    Ok(notifications.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accesses count as being recorded for a tenth of a second after the writer took a batch,
    /// and never before its first.
    #[test]
    fn accesses_are_being_recorded_for_a_tenth_of_a_second_after_a_batch() {
        let last = LastBatch::never();
        assert!(!last.lately(1), "no batch yet");
        last.taken(1_000);
        assert!(last.lately(1_000));
        assert!(last.lately(1_099));
        assert!(!last.lately(1_100));
    }
}
