//! Access auditing (SPEC §3 AuditEvent): which accesses are recorded, and the writer that
//! commits them before the response is sent.
//!
//! The writer is one thread with group commit: requests hand their accesses over a bounded
//! channel and wait; the thread takes everything queued, writes it in one transaction (with
//! the notification outbox rows) and then answers every waiter. One commit serves many
//! lookups, and SQLite's single write lock is never fought over by the request threads.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{oneshot, Notify};

use crate::attendance::{AttendanceRule, Summary};
use crate::auth::jwt::Identity;
use crate::auth::{Caller, Recording};
use crate::db::audit::{self, EarlierView, NewAccess, StoredAccess};
use crate::db::{write_transaction, DbConn};
use crate::error::FhirError;
use crate::fhir::audit_event::{self, Access, AccessKind, CareSetting, Purpose, Report};
use crate::fhir::organization::referenced_ods;
use crate::fhir::ResourceType;
use crate::metrics::Metrics;
use crate::service::subscription::SubscriptionStatus;

/// Accesses waiting beyond this many make new requests 503 rather than queue without bound.
const QUEUE_CAPACITY: usize = 8192;
/// The most accesses one transaction takes.
const MAX_BATCH: usize = 1024;
/// How often the writer asks again whether its statements may keep their plans
/// (`db::plan_audit_statements`) while they may not.
const ASK_PLANS_AGAIN: std::time::Duration = std::time::Duration::from_secs(10);

type Reply = oneshot::Sender<Result<(), String>>;
type Job = (Vec<PendingAccess>, Reply);

/// The handle requests use to record accesses.
#[derive(Clone)]
pub struct Auditor {
    queue: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

/// What a read disclosed, with the accesses that disclosing it makes. The service layer
/// returns one for every read path (read, vread, history, search, the access history); the
/// data is private, and the only way to it is `Auditor::disclosing`, which records the accesses
/// first. A `Disclosed` is built only from `Accesses`, which only an `AccessContext` makes, and
/// an `AccessContext` exists only inside `Auditor::disclosing`. So a read path cannot answer
/// without auditing: it does not compile. Each door, shut:
///
/// ```
/// use cpis::audit::{Auditor, Reader};
/// use cpis::db::DbPool;
/// use cpis::error::FhirError;
/// async fn respond(auditor: &Auditor, pool: &DbPool, reader: Reader) -> Result<i64, FhirError> {
///     // recorded, then handed over
///     auditor.disclosing(pool, reader, |_conn, ctx| Ok(ctx.disclosed(1, &[]))).await
/// }
/// ```
///
/// ```compile_fail,E0616
/// use cpis::audit::Disclosed;
/// fn respond(disclosed: Disclosed<String>) -> String {
///     disclosed.data // private: only the recorder hands the data out
/// }
/// ```
///
/// ```compile_fail,E0624
/// use cpis::audit::{Accesses, Disclosed};
/// fn forge(data: String, accesses: Accesses) -> Disclosed<String> {
///     Disclosed::new(data, accesses) // only the audit module builds one
/// }
/// ```
///
/// ```compile_fail,E0451
/// use cpis::audit::{AccessContext, Reader};
/// fn forge(reader: Reader) -> AccessContext {
///     AccessContext { reader } // only `Auditor::disclosing` makes a context
/// }
/// ```
///
/// ```compile_fail,E0603
/// use cpis::{auth::Caller, db::DbConn};
/// fn around(conn: &mut DbConn) {
///     // plan content without a disclosure: not reachable from outside the service layer
///     let _ = cpis::service::read::supporting(conn, todo!(), cpis::fhir::ResourceType::EpisodeOfCare, "id");
/// }
/// ```
///
/// ```compile_fail,E0603
/// use cpis::{auth::Caller, db::DbConn};
/// fn around(conn: &mut DbConn, caller: &Caller) {
///     let _ = cpis::service::search::supporting_plans(conn, todo!(), "9449306753");
/// }
/// ```
///
/// ```compile_fail,E0451
/// use cpis::service::access_history::Plan;
/// fn forge(scope: cpis::db::audit::HistoryScope) -> Plan {
///     // a history page is read only for a plan a disclosure decided
///     Plan { scope, cap: None, audited_child: None, only_visible_plans: false }
/// }
/// ```
#[must_use = "a disclosure reaches a response only through Auditor::disclose"]
#[derive(Debug)]
pub struct Disclosed<T> {
    data: T,
    accesses: Vec<PendingAccess>,
}

/// The accesses a disclosure makes: built only from an `AccessContext`.
#[derive(Debug)]
pub struct Accesses(Vec<PendingAccess>);

impl<T> Disclosed<T> {
    fn new(data: T, accesses: Accesses) -> Disclosed<T> {
        Disclosed {
            data,
            accesses: accesses.0,
        }
    }

    /// The same accesses, with the data changed (e.g. rendered into a Bundle).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Disclosed<U> {
        Disclosed {
            data: f(self.data),
            accesses: self.accesses,
        }
    }
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

    /// Runs `read` on the pool as `reader`, and hands over what it disclosed once the accesses
    /// it makes are committed: nothing is shown that was not recorded. The read's context
    /// exists only here, and only a context makes a disclosure.
    pub async fn disclosing<T, F>(
        &self,
        pool: &crate::db::DbPool,
        reader: Reader,
        read: F,
    ) -> Result<T, FhirError>
    where
        F: FnOnce(&mut DbConn, &AccessContext) -> Result<Disclosed<T>, FhirError> + Send + 'static,
        T: Send + 'static,
    {
        let ctx = AccessContext { reader };
        let disclosed = crate::db::run(pool, move |conn| read(conn, &ctx)).await?;
        self.record(disclosed.accesses).await?;
        Ok(disclosed.data)
    }

    /// Records `accesses` and returns once they are committed.
    async fn record(&self, accesses: Vec<PendingAccess>) -> Result<(), FhirError> {
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
    // One connection kept for the writer's life: as the only writer, its page cache stays
    // valid between batches (a connection that sees another's commit must drop its cache).
    let mut held: Option<(DbConn, std::time::Instant)> = None;
    // Until its statements may keep their plans (`db::plan_audit_statements`), asked again
    // now and then.
    let mut plans_asked: Option<std::time::Instant> = None;
    while let Ok(first) = jobs.recv() {
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

/// What was recorded before a batch about its reportable accesses' children.
struct Recorded {
    /// The same people's views within the 24-hour collapse window that were shown somewhere.
    views: Vec<audit::RecentView>,
    /// The LAs each of those views, and each access in a pattern, was shown to, by seq.
    las_shown: Vec<(i64, String)>,
    /// Every reportable access within the attendance window: (child, setting, instant).
    attendances: Vec<(String, String, i64)>,
    /// (child, LA): the LA was shown an access of the child in a pattern within the window,
    /// so a later one in the same pattern is not its mark.
    pattern_told: Vec<(String, String)>,
}

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
            audit::views_shown_since(conn, &children, collapse_since.min(attendance_since))?;
        // Every unscheduled view is an attendance, the collapsed ones too (SPEC §3).
        let in_window = |v: &&audit::RecentView| v.recorded_ms >= attendance_since;
        let attendances = earlier
            .iter()
            .filter(in_window)
            .map(|v| (v.nhs_number.clone(), v.agent_org.clone(), v.recorded_ms))
            .collect();
        let in_pattern: Vec<&audit::RecentView> = earlier
            .iter()
            .filter(in_window)
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

/// Decides, in order, where each access is shown and the child's attendance summary as of it
/// (written into its row): from what was recorded before, and the batch's earlier accesses as
/// they are decided.
fn decide(
    rows: &mut [NewAccess],
    recorded: &Recorded,
    stamp: i64,
    rule: AttendanceRule,
) -> Vec<Showing> {
    let mut showings: Vec<Showing> = Vec::with_capacity(rows.len());
    for i in 0..rows.len() {
        let (before, rest) = rows.split_at_mut(i);
        let Some(access) = rest.first_mut() else {
            break;
        };
        if !access.reportable {
            showings.push(collapse(false, &access.la_ods, &[]));
            continue;
        }
        let row = &access.row;
        let same_view = |nhs: &str, sub: &str, org: &str| {
            nhs == row.nhs_number && sub == row.agent_sub && org == row.agent_org
        };
        let earlier: Vec<EarlierView> = recorded
            .views
            .iter()
            .filter(|v| same_view(&v.nhs_number, &v.agent_sub, &v.agent_org))
            .map(|v| EarlierView {
                shown: v.shown,
                las_shown: recorded
                    .las_shown
                    .iter()
                    .filter(|(seq, _)| *seq == v.seq)
                    .map(|(_, la)| la.clone())
                    .collect(),
            })
            .chain(
                before
                    .iter()
                    .zip(&showings)
                    .filter(|(b, _)| {
                        same_view(&b.row.nhs_number, &b.row.agent_sub, &b.row.agent_org)
                    })
                    .map(|(_, showing)| EarlierView {
                        shown: showing.in_history,
                        las_shown: showing.to_las.clone(),
                    }),
            )
            .collect();
        let showing = collapse(true, &access.la_ods, &earlier);
        let attended: Vec<(String, i64)> = recorded
            .attendances
            .iter()
            .filter(|(nhs, _, _)| *nhs == row.nhs_number)
            .map(|(_, org, ms)| (org.clone(), *ms))
            .chain(
                before
                    .iter()
                    .filter(|b| b.reportable && b.row.nhs_number == row.nhs_number)
                    .map(|b| (b.row.agent_org.clone(), stamp)),
            )
            .collect();
        let summary = rule.summarise(&attended, Some(row.agent_org.as_str()), stamp);
        // Each LA's mark: the access that reaches the pattern in its window, for every LA it
        // is shown to; else the first access an LA is shown while the pattern holds.
        let mut showing = showing;
        if summary.pattern {
            let told_before = |la: &String| {
                recorded
                    .pattern_told
                    .iter()
                    .any(|(nhs, told)| *nhs == row.nhs_number && told == la)
                    || before.iter().zip(&showings).any(|(b, shown)| {
                        b.row.nhs_number == row.nhs_number
                            && b.row.attendance_pattern == Some(true)
                            && shown.to_las.contains(la)
                    })
            };
            showing.marked_las = showing
                .to_las
                .iter()
                .filter(|la| summary.first || !told_before(la))
                .cloned()
                .collect();
        }
        let count = |n: u32| Some(i32::try_from(n).unwrap_or(i32::MAX));
        let row = &mut access.row;
        row.shown = showing.in_history;
        row.told_las = !showing.to_las.is_empty();
        row.attendances = count(summary.attendances);
        row.attendance_settings = count(summary.settings);
        row.attendance_window_days = count(summary.window_days);
        row.attendance_pattern = Some(summary.pattern);
        row.pattern_reached = summary.first || !showing.marked_las.is_empty();
        showings.push(showing);
    }
    showings
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

/// The same person's views of a child within this long count once (SPEC §3).
const COLLAPSE_MS: i64 = 24 * 60 * 60 * 1000;

/// Where an access is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Showing {
    /// In the child's history (the 25 most recent accesses).
    pub in_history: bool,
    /// To these of its LAs (their history, pull and notifications).
    pub to_las: Vec<String>,
    /// Of those, the LAs for which it is the repeated-attendance mark.
    pub marked_las: Vec<String>,
}

/// The 24-hour collapse (SPEC §3). Only a reportable access (health-care, unscheduled) is
/// shown at all. It is shown in the child's history unless one of the same person's views
/// within 24 hours (`earlier`) was; and to each of its LAs not already shown one of them. So
/// the first view counts, and a plan of a new LA in the meantime still reaches that LA.
pub fn collapse(reportable: bool, las: &[String], earlier: &[EarlierView]) -> Showing {
    if !reportable {
        return Showing {
            in_history: false,
            to_las: Vec::new(),
            marked_las: Vec::new(),
        };
    }
    let told = |la: &String| earlier.iter().any(|e| e.las_shown.contains(la));
    Showing {
        in_history: !earlier.iter().any(|e| e.shown),
        to_las: las.iter().filter(|la| !told(la)).cloned().collect(),
        marked_las: Vec::new(),
    }
}

/// Which of an LA's Subscriptions (id, status) are notified: every one not turned off (one in
/// `error` keeps being tried, so that it can return to `active`).
pub fn recipients(subscriptions: &[(String, String)]) -> impl Iterator<Item = &str> {
    subscriptions
        .iter()
        .filter(|(_, status)| delivers(status))
        .map(|(id, _)| id.as_str())
}

/// Whether a Subscription in this status is notified.
fn delivers(status: &str) -> bool {
    SubscriptionStatus::parse(status).delivers()
}

/// One access to one child, as a request hands it to the writer: everything its AuditEvent
/// says but the instant it is recorded, which the writer stamps.
#[derive(Debug, Clone)]
pub struct PendingAccess {
    id: String,
    requested_ms: i64,
    /// The child's NHS number, or what a governance report was about.
    subject: String,
    kind: AccessKind,
    purpose: Purpose,
    who: Identity,
    entities: Vec<String>,
    observer: String,
    /// The LAs whose plans were returned.
    la_ods: Vec<String>,
}

impl PendingAccess {
    /// The row to store, recorded at `stamp`; the writer adds what is decided under its lock
    /// (where it is shown, the attendance summary).
    fn row(&self, stamp: i64) -> NewAccess {
        let who = &self.who;
        NewAccess {
            row: StoredAccess {
                id: self.id.clone(),
                recorded_ms: stamp,
                nhs_number: self.subject.clone(),
                agent_sub: who.sub.clone(),
                agent_org: who.org.clone().unwrap_or_default(),
                care_setting: self.purpose.as_stored().to_string(),
                accessor_role: who.role.as_str().to_string(),
                interaction: self.kind.interaction().to_string(),
                agent_name: who.name.clone(),
                org_name: who.org_name.clone(),
                job_role: who.job_role.clone(),
                job_role_code: who.job_role_code.clone(),
                observer: self.observer.clone(),
                entities: self.entities.join(" "),
                ..StoredAccess::default()
            },
            reportable: who.role.recording() == Recording::Clinical
                && self.purpose == Purpose::Care(CareSetting::Unscheduled),
            la_ods: self.la_ods.clone(),
        }
    }
}

/// The AuditEvent (JSON) of a stored access: rendered from its columns, or, for an access
/// recorded before they existed, the document kept then.
pub fn render(stored: &StoredAccess, audience: Audience<'_>) -> Result<String, String> {
    if !stored.content.is_empty() {
        return render_legacy(&stored.content, audience);
    }
    let who = Identity {
        sub: stored.agent_sub.clone(),
        role: stored.accessor_role.parse()?,
        name: stored.agent_name.clone(),
        org: (!stored.agent_org.is_empty()).then(|| stored.agent_org.clone()),
        org_name: stored.org_name.clone(),
        job_role: stored.job_role.clone(),
        job_role_code: stored.job_role_code.clone(),
    };
    let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
    let attendance = match (
        count(stored.attendances),
        count(stored.attendance_settings),
        count(stored.attendance_window_days),
        stored.attendance_pattern,
    ) {
        (Some(attendances), Some(settings), Some(window_days), Some(pattern)) => Some(Summary {
            attendances,
            settings,
            window_days,
            pattern,
            first: match audience {
                Audience::Whole => stored.pattern_reached,
                Audience::La { pattern_marked, .. } => pattern_marked,
            },
        }),
        _ => None,
    };
    let entities = references_for(&stored.entities, audience);
    Ok(audit_event::to_json(&Access {
        id: &stored.id,
        recorded_ms: stored.recorded_ms,
        subject: &stored.nhs_number,
        kind: AccessKind::from_interaction(&stored.interaction)
            .ok_or_else(|| format!("unknown interaction {:?}", stored.interaction))?,
        purpose: Purpose::from_stored(&stored.care_setting)
            .ok_or_else(|| format!("unknown care setting {:?}", stored.care_setting))?,
        who: &who,
        entities: &entities,
        observer: &stored.observer,
        attendance: attendance.as_ref(),
    }))
}

/// An access kept whole as a document (before accesses were columns): as it was for the
/// whole audience; for an LA without references, which named no LA then.
fn render_legacy(content: &str, audience: Audience<'_>) -> Result<String, String> {
    if audience == Audience::Whole {
        return Ok(content.to_string());
    }
    let mut event: Value = serde_json::from_str(content).map_err(|e| e.to_string())?;
    if let Some(entities) = event.get_mut("entity").and_then(Value::as_array_mut) {
        entities.retain(|e| e.pointer("/what/reference").is_none());
    }
    serde_json::to_string(&event).map_err(|e| e.to_string())
}

/// A returned plan or flag, as an audit needs it.
pub struct Returned<'a> {
    pub ty: ResourceType,
    pub content: &'a Value,
}

/// Who reads, how and when: what the AuditEvents of a read say besides what it returned.
#[derive(Debug, Clone)]
pub struct Reader {
    pub caller: Caller,
    pub kind: AccessKind,
    pub care_setting: CareSetting,
    pub now_ms: i64,
    /// The server's base URL (`AuditEvent.source.observer`).
    pub observer: String,
}

/// A read in progress inside `Auditor::disclosing`: the only maker of disclosures.
#[derive(Debug)]
pub struct AccessContext {
    reader: Reader,
}

impl AccessContext {
    pub fn caller(&self) -> &Caller {
        &self.reader.caller
    }

    pub fn now_ms(&self) -> i64 {
        self.reader.now_ms
    }

    /// `data`, which returned these plans and flags, with the accesses that makes.
    pub fn disclosed<T>(&self, data: T, returned: &[Returned<'_>]) -> Disclosed<T> {
        Disclosed::new(data, self.accesses(returned))
    }

    /// The accesses of reading these plans and flags (to disclose with data that holds them).
    pub fn accesses(&self, returned: &[Returned<'_>]) -> Accesses {
        Accesses(accesses(&self.reader, returned))
    }

    /// `data` with the governance access of a report search about `subject`: recorded for
    /// operations to list, never shown in a history, notified, counted or reported.
    pub fn report_disclosed<T>(&self, data: T, report: Report, subject: &str) -> Disclosed<T> {
        let mut access = access(&self.reader, subject.to_string(), &[], Vec::new());
        access.purpose = Purpose::Report(report);
        Disclosed::new(data, Accesses(vec![access]))
    }

    /// `data` with the access of a history search for child `nhs`, who has plans of `las`;
    /// with `None`, a disclosure that makes no access (nothing about a child is shown).
    pub fn history_disclosed<T>(
        &self,
        data: T,
        child: Option<(&str, Vec<String>)>,
    ) -> Disclosed<T> {
        let accesses = match child {
            Some((nhs, las)) => history_access(&self.reader, nhs, las),
            None => Vec::new(),
        };
        Disclosed::new(data, Accesses(accesses))
    }
}

impl<T> Disclosed<T> {
    /// `data` with the accesses already worked out for it.
    pub fn with(data: T, accesses: Accesses) -> Disclosed<T> {
        Disclosed::new(data, accesses)
    }
}

/// The accesses a request makes: one per child among the plans and flags it returns. Only
/// health-care accesses (shown and notified when unscheduled) and operations' reads of plans
/// (governance only) are recorded; an LA reading its own plans is not an access.
fn accesses(ctx: &Reader, returned: &[Returned<'_>]) -> Vec<PendingAccess> {
    if ctx.caller.role().recording() == Recording::NotAnAccess {
        return Vec::new();
    }
    let mut children: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for r in returned {
        let (Some(nhs), Some(id)) = (child_of(r), r.content.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let (refs, las) = children.entry(nhs).or_default();
        let owner = owner_of(r);
        let reference = owned_reference(&format!("{}/{id}", r.ty.as_str()), owner.as_deref());
        if !refs.contains(&reference) {
            refs.push(reference);
        }
        if let Some(la) = owner {
            if !las.contains(&la) {
                las.push(la);
            }
        }
    }
    children
        .into_iter()
        .map(|(nhs, (refs, las))| access(ctx, nhs, &refs, las))
        .collect()
}

/// The access of an access-history search for a child who has plans (of `las`): nothing but
/// the child is referenced.
fn history_access(ctx: &Reader, nhs: &str, las: Vec<String>) -> Vec<PendingAccess> {
    if ctx.caller.role().recording() == Recording::NotAnAccess {
        return Vec::new();
    }
    vec![access(ctx, nhs.to_string(), &[], las)]
}

fn access(ctx: &Reader, nhs: String, refs: &[String], las: Vec<String>) -> PendingAccess {
    PendingAccess {
        // Time-ordered ids: the id indexes grow at their end instead of at random pages.
        id: uuid::Uuid::now_v7().to_string(),
        requested_ms: ctx.now_ms,
        subject: nhs,
        kind: ctx.kind,
        purpose: Purpose::Care(ctx.care_setting),
        who: ctx.caller.0.clone(),
        entities: refs.to_vec(),
        observer: ctx.observer.clone(),
        la_ods: las,
    }
}

/// A returned plan or Flag as its access keeps it: the reference and, after `@`, the LA that
/// holds it, so that an LA is shown only references to its own plans (ids never hold `@`).
fn owned_reference(reference: &str, owner: Option<&str>) -> String {
    match owner {
        Some(la) => format!("{reference}@{la}"),
        None => reference.to_string(),
    }
}

/// Who an AuditEvent is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// Health care and operations: every reference, the child's own attendance mark.
    Whole,
    /// One LA: references to its own plans only (never to another LA's, live, withdrawn or
    /// deleted), and the attendance mark as it was made for that LA.
    La { ods: &'a str, pattern_marked: bool },
}

/// The references an access shows to `audience`. An LA sees its own plans' references only;
/// one stored before references kept their LA is shown to no LA.
fn references_for(entities: &str, audience: Audience<'_>) -> Vec<String> {
    entities
        .split_whitespace()
        .filter_map(|entity| {
            let (reference, owner) = match entity.split_once('@') {
                Some((reference, owner)) => (reference, Some(owner)),
                None => (entity, None),
            };
            match audience {
                Audience::Whole => Some(reference.to_string()),
                Audience::La { ods, .. } => owner
                    .filter(|owner| owner.eq_ignore_ascii_case(ods))
                    .map(|_| reference.to_string()),
            }
        })
        .collect()
}

fn child_of(r: &Returned<'_>) -> Option<String> {
    let reference = match r.ty {
        ResourceType::EpisodeOfCare => r.content.get("patient"),
        ResourceType::Flag => r.content.get("subject"),
        ResourceType::Organization => None,
    }?;
    reference
        .pointer("/identifier/value")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn owner_of(r: &Returned<'_>) -> Option<String> {
    match r.ty {
        ResourceType::EpisodeOfCare => referenced_ods(r.content.get("managingOrganization")),
        ResourceType::Flag => referenced_ods(r.content.get("author")),
        ResourceType::Organization => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nurse(org: Option<&str>, job_role: bool) -> Identity {
        Identity {
            sub: "555021935107".into(),
            role: crate::auth::Role::HealthCare,
            name: Some("Jane Smith".into()),
            org: org.map(str::to_string),
            org_name: org.map(|_| "St Thomas' Hospital".to_string()),
            job_role: job_role.then(|| "Staff Nurse".to_string()),
            job_role_code: job_role.then(|| "R8001".to_string()),
        }
    }

    fn pending(who: Identity, kind: AccessKind, entities: &[&str]) -> PendingAccess {
        PendingAccess {
            id: "0193a1c4-0000-7000-8000-000000000001".into(),
            requested_ms: 1_790_000_000_000,
            subject: "9449306753".into(),
            kind,
            purpose: Purpose::Care(CareSetting::Unscheduled),
            who,
            entities: entities.iter().map(|e| e.to_string()).collect(),
            observer: "https://cpis.example.org/FHIR/R4".into(),
            la_ods: las(&["E09000030"]),
        }
    }

    /// What the writer stored before accesses were kept as columns: the document itself.
    fn as_recorded(p: &PendingAccess, stamp: i64, attendance: Option<&Summary>) -> String {
        audit_event::to_json(&Access {
            id: &p.id,
            recorded_ms: stamp,
            subject: &p.subject,
            kind: p.kind,
            purpose: p.purpose,
            who: &p.who,
            entities: &p.entities,
            observer: &p.observer,
            attendance,
        })
    }

    #[test]
    fn a_stored_access_renders_exactly_the_audit_event_it_was_recorded_as() {
        let summary = Summary {
            attendances: 3,
            settings: 2,
            window_days: 30,
            pattern: true,
            first: true,
        };
        let cases = [
            (
                nurse(Some("RJ1"), true),
                AccessKind::Search,
                vec!["Flag/a", "EpisodeOfCare/a"],
                Some(summary),
            ),
            (
                nurse(None, false),
                AccessKind::Read,
                vec!["EpisodeOfCare/b"],
                None,
            ),
            (nurse(Some("RJ1"), false), AccessKind::History, vec![], None),
            (
                nurse(Some("RJ1"), true),
                AccessKind::VRead,
                vec!["Flag/c"],
                None,
            ),
        ];
        for (who, kind, entities, attendance) in cases {
            let p = pending(who, kind, &entities);
            let mut row = p.row(1_790_000_000_123).row;
            if let Some(a) = &attendance {
                row.attendances = Some(a.attendances as i32);
                row.attendance_settings = Some(a.settings as i32);
                row.attendance_window_days = Some(a.window_days as i32);
                row.attendance_pattern = Some(a.pattern);
                row.pattern_reached = a.first;
            }
            assert_eq!(
                render(&row, Audience::Whole).unwrap(),
                as_recorded(&p, 1_790_000_000_123, attendance.as_ref()),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn an_access_recorded_as_a_document_is_served_as_it_was_kept() {
        let row = StoredAccess {
            content: r#"{"resourceType":"AuditEvent","id":"old"}"#.into(),
            ..StoredAccess::default()
        };
        assert_eq!(render(&row, Audience::Whole).unwrap(), row.content);
    }

    #[test]
    fn a_stored_access_with_an_unknown_interaction_is_an_error_not_a_guess() {
        let mut row = pending(nurse(None, false), AccessKind::Read, &[])
            .row(1)
            .row;
        row.interaction = "patch".into();
        assert!(render(&row, Audience::Whole).is_err());
    }

    /// A reportable access to the child by `sub` at `org`, its plans held by `las`.
    fn at(sub: &str, org: &str, las_held: &[&str]) -> NewAccess {
        let mut who = nurse(Some(org), false);
        who.sub = sub.into();
        let mut p = pending(who, AccessKind::Search, &["Flag/a"]);
        p.la_ods = las(las_held);
        p.row(1_790_000_000_000)
    }

    fn nothing_recorded() -> Recorded {
        Recorded {
            views: Vec::new(),
            las_shown: Vec::new(),
            attendances: Vec::new(),
            pattern_told: Vec::new(),
        }
    }

    #[test]
    fn a_batch_decides_each_access_as_if_the_ones_before_it_were_stored() {
        let mut rows = vec![
            at("nurse-1", "RJ1", &["E09000030"]),
            at("nurse-1", "RJ1", &["E09000030"]),
            at("nurse-2", "RJ1", &["E09000030"]),
            at("nurse-3", "RQM", &["E09000030"]),
            at("nurse-4", "RYJ", &["E09000030"]),
        ];
        let showings = decide(
            &mut rows,
            &nothing_recorded(),
            1_790_000_000_000,
            AttendanceRule::default(),
        );
        let in_history: Vec<bool> = showings.iter().map(|s| s.in_history).collect();
        assert_eq!(
            in_history,
            [true, false, true, true, true],
            "the repeat view collapses"
        );
        assert!(showings[1].to_las.is_empty());
        // One setting (RJ1) twice the same day is one attendance; RQM and RYJ make three settings.
        let attendances: Vec<Option<i32>> = rows.iter().map(|r| r.row.attendances).collect();
        assert_eq!(attendances, [Some(1), Some(1), Some(1), Some(2), Some(3)]);
        let reached: Vec<bool> = rows.iter().map(|r| r.row.pattern_reached).collect();
        assert_eq!(reached, [false, false, false, false, true]);
    }

    #[test]
    fn a_pattern_reached_again_after_it_lapsed_is_marked_again_for_an_la_told_of_the_last_one() {
        let day = 24 * 60 * 60 * 1000;
        let now = 1_790_000_000_000;
        // Two settings within the window, each shown to the LA while an earlier pattern held
        // (their own summaries said pattern); the third setting reaches it again today.
        let recorded = Recorded {
            views: Vec::new(),
            las_shown: Vec::new(),
            attendances: vec![
                ("9449306753".into(), "RRU".into(), now - 20 * day),
                ("9449306753".into(), "RQX".into(), now - 18 * day),
            ],
            pattern_told: vec![("9449306753".into(), "E09000030".into())],
        };
        let mut rows = vec![at("nurse-9", "R1H", &["E09000030"])];
        let showings = decide(&mut rows, &recorded, now, AttendanceRule::default());
        assert_eq!(showings[0].marked_las, las(&["E09000030"]));
        assert!(rows[0].row.pattern_reached);
        // Without the re-reach (a fourth setting in the same pattern), no mark.
        let mut rows = vec![at("nurse-9", "R1H", &["E09000030"])];
        let recorded = Recorded {
            attendances: vec![
                ("9449306753".into(), "RRU".into(), now - 20 * day),
                ("9449306753".into(), "RQX".into(), now - 18 * day),
                ("9449306753".into(), "RAL".into(), now - 17 * day),
            ],
            ..recorded
        };
        let showings = decide(&mut rows, &recorded, now, AttendanceRule::default());
        assert!(showings[0].marked_las.is_empty());
        assert!(!rows[0].row.pattern_reached);
    }

    #[test]
    fn an_earlier_view_in_the_database_and_one_in_the_batch_count_alike() {
        let recorded = Recorded {
            views: vec![audit::RecentView {
                seq: 7,
                nhs_number: "9449306753".into(),
                agent_sub: "nurse-1".into(),
                agent_org: "RJ1".into(),
                recorded_ms: 1_789_999_000_000,
                shown: true,
                told_las: true,
                attendance_pattern: Some(false),
            }],
            las_shown: vec![(7, "E09000030".into())],
            attendances: vec![("9449306753".into(), "RJ1".into(), 1_789_999_000_000)],
            pattern_told: Vec::new(),
        };
        let mut rows = vec![
            at("nurse-1", "RJ1", &["E09000030", "E08000025"]),
            at("nurse-1", "RJ1", &["E09000030", "E08000025"]),
        ];
        let showings = decide(
            &mut rows,
            &recorded,
            1_790_000_000_000,
            AttendanceRule::default(),
        );
        assert!(!showings[0].in_history);
        assert_eq!(
            showings[0].to_las,
            las(&["E08000025"]),
            "only the LA not yet told"
        );
        assert!(
            showings[1].to_las.is_empty(),
            "told by the batch's first access"
        );
        assert_eq!(rows[0].row.attendances, Some(1));
    }

    fn las(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| c.to_string()).collect()
    }

    fn earlier(shown: bool, las_shown: &[&str]) -> EarlierView {
        EarlierView {
            shown,
            las_shown: las(las_shown),
        }
    }

    #[test]
    fn a_first_view_is_shown_in_the_history_and_to_every_la_of_the_child() {
        let showing = collapse(true, &las(&["E09000030", "E08000025"]), &[]);
        assert!(showing.in_history);
        assert_eq!(showing.to_las, las(&["E09000030", "E08000025"]));
    }

    #[test]
    fn a_view_within_a_day_of_a_shown_one_is_recorded_but_shown_nowhere() {
        let showing = collapse(true, &las(&["E09000030"]), &[earlier(true, &["E09000030"])]);
        assert!(!showing.in_history);
        assert!(showing.to_las.is_empty());
    }

    #[test]
    fn an_la_whose_plan_began_since_the_first_view_is_still_told() {
        let showing = collapse(
            true,
            &las(&["E09000030", "E08000025"]),
            &[earlier(true, &["E09000030"])],
        );
        assert!(
            !showing.in_history,
            "the child's history shows the first view only"
        );
        assert_eq!(showing.to_las, las(&["E08000025"]));
    }

    #[test]
    fn only_reportable_accesses_are_shown() {
        let scheduled = collapse(false, &las(&["E09000030"]), &[]);
        assert_eq!(
            scheduled,
            Showing {
                in_history: false,
                to_las: Vec::new(),
                marked_las: Vec::new(),
            }
        );
    }

    #[test]
    fn an_earlier_view_shown_nowhere_does_not_hide_this_one() {
        // A scheduled or collapsed view earlier in the day was shown nowhere itself.
        let showing = collapse(true, &las(&["E09000030"]), &[earlier(false, &[])]);
        assert!(showing.in_history);
        assert_eq!(showing.to_las, las(&["E09000030"]));
    }

    #[test]
    fn every_subscription_but_those_turned_off_is_notified() {
        let subscriptions = [
            ("a".to_string(), "active".to_string()),
            ("b".to_string(), "off".to_string()),
            ("c".to_string(), "error".to_string()),
            ("d".to_string(), "requested".to_string()),
        ];
        let notified: Vec<&str> = recipients(&subscriptions).collect();
        assert_eq!(notified, ["a", "c", "d"]);
    }
}
