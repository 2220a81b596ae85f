//! Audit storage: the rows of accesses (with their outbox rows) and the access-history
//! queries. Which accesses are shown, and to whom, is decided in `crate::audit`.

use diesel::prelude::*;

use super::raw::insert_rows;
use super::schema::{audit_events, audit_las, subscriptions};
use super::{per_key, DbConn};

/// An access as stored: the columns its AuditEvent is rendered from (`crate::audit::render`),
/// and where it is shown. Nothing but these is kept per access (issue #16: a whole JSON
/// document per access cost ~1.4 KB).
#[derive(Debug, Clone, Default, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct StoredAccess {
    /// Commit order (the key `audit_las` rows name the access by).
    pub seq: i64,
    pub id: String,
    pub recorded_ms: i64,
    pub nhs_number: String,
    pub agent_sub: String,
    /// The accessor's organisation (ODS code), empty when the token named none.
    pub agent_org: String,
    pub care_setting: String,
    pub accessor_role: String,
    /// The REST interaction (`AuditEvent.subtype`): `read`, `vread`, `history-instance`, …
    pub interaction: String,
    pub agent_name: Option<String>,
    pub org_name: Option<String>,
    pub job_role: Option<String>,
    pub job_role_code: Option<String>,
    /// The server's base URL when it recorded the access.
    pub observer: String,
    /// The references returned, separated by spaces.
    pub entities: String,
    pub attendances: Option<i32>,
    pub attendance_settings: Option<i32>,
    pub attendance_window_days: Option<i32>,
    pub attendance_pattern: Option<bool>,
    /// It first brought the child to a repeated-attendance pattern (`crate::attendance`).
    pub pattern_reached: bool,
    /// In the child's history (health-care, unscheduled, the person's first view in 24 hours).
    pub shown: bool,
    /// Shown to at least one of its LAs (their history, pull and notifications).
    pub told_las: bool,
    /// The whole AuditEvent of an access recorded before accesses were stored as columns;
    /// empty since.
    pub content: String,
}

/// One access to one child, ready to store.
#[derive(Debug, Clone)]
pub struct NewAccess {
    pub row: StoredAccess,
    /// Whether it can appear in the history and be notified: health-care and unscheduled.
    pub reportable: bool,
    /// The LAs whose plans were returned.
    pub la_ods: Vec<String>,
}

/// Key of the PostgreSQL advisory lock that orders audit writes across server processes.
const AUDIT_WRITE_LOCK: i64 = 0x4350_4953_4155_4449; // "CPISAUDI"

/// Takes the audit write lock for the rest of the transaction (SQLite's `BEGIN IMMEDIATE` has
/// taken it already; on PostgreSQL, an advisory lock shared by every server process) and
/// returns the instant to record a batch at: `requested_ms`, or just after the newest access
/// already committed, whichever is later. Under the lock, commit order is then stamp order, and
/// the 24-hour checks see every earlier access.
pub fn lock_and_stamp(conn: &mut DbConn, requested_ms: i64) -> QueryResult<i64> {
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({AUDIT_WRITE_LOCK})"))
            .execute(c)?;
    }
    let newest: Option<i64> = audit_events::table
        .select(diesel::dsl::max(audit_events::recorded_ms))
        .first(conn)?;
    Ok(newest.map_or(requested_ms, |n| requested_ms.max(n + 1)))
}

/// A notification to queue.
struct OutboxRow<'a> {
    id: &'a str,
    audit_event_id: &'a str,
    subscription_id: &'a str,
    created_ms: i64,
    next_attempt_ms: i64,
}

/// An earlier view of the same child by the same person at the same organisation: whether
/// it was shown in the child's history, and the LAs it was shown to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EarlierView {
    pub shown: bool,
    pub las_shown: Vec<String>,
}

/// An earlier reportable access (health-care, unscheduled) to one of a batch's children: what
/// the 24-hour check (the same person's views shown somewhere), the attendances (every one)
/// and the per-LA attendance mark (those in a pattern, and the LAs they were shown to) are
/// decided from.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct RecentView {
    pub seq: i64,
    pub nhs_number: String,
    pub agent_sub: String,
    pub agent_org: String,
    pub recorded_ms: i64,
    pub shown: bool,
    pub told_las: bool,
    pub attendance_pattern: Option<bool>,
}

/// The reportable accesses to these children recorded since `since_ms`, from the child index
/// (`per_key`): one read serves the 24-hour check and the attendances.
pub fn views_shown_since(
    conn: &mut DbConn,
    children: &[&str],
    since_ms: i64,
) -> QueryResult<Vec<RecentView>> {
    let views = || {
        audit_events::table
            .filter(audit_events::recorded_ms.ge(since_ms))
            .filter(audit_events::care_setting.eq("unscheduled"))
            .filter(audit_events::accessor_role.eq("health-care"))
            .select((
                audit_events::seq,
                audit_events::nhs_number,
                audit_events::agent_sub,
                audit_events::agent_org,
                audit_events::recorded_ms,
                audit_events::shown,
                audit_events::told_las,
                audit_events::attendance_pattern,
            ))
    };
    per_key(
        conn,
        children,
        |conn, child| {
            views()
                .filter(audit_events::nhs_number.eq(*child))
                .load(conn)
        },
        |conn, children| {
            views()
                .filter(audit_events::nhs_number.eq_any(children))
                .load(conn)
        },
    )
}

/// The LAs each of these accesses was shown to: (seq, LA).
pub fn las_shown(conn: &mut DbConn, seqs: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    let shown = || {
        audit_las::table
            .filter(audit_las::shown.eq(true))
            .select((audit_las::event_seq, audit_las::la_ods))
    };
    per_key(
        conn,
        seqs,
        |conn, seq| shown().filter(audit_las::event_seq.eq(*seq)).load(conn),
        |conn, seqs| shown().filter(audit_las::event_seq.eq_any(seqs)).load(conn),
    )
}

/// That an access was shown, or not, to one of the LAs it concerns.
pub struct LaShowing<'a> {
    pub audit_event_id: &'a str,
    pub la_ods: &'a str,
    pub shown: bool,
    /// The access is this LA's repeated-attendance mark (`crate::audit::decide`).
    pub pattern_marked: bool,
}

/// Stores a batch of accesses, all recorded at `recorded_ms`, and the LAs each concerns,
/// inside the caller's transaction (which holds `lock_and_stamp`'s lock): a few multi-row
/// statements, not a few per access.
pub fn insert_all(
    conn: &mut DbConn,
    accesses: &[&StoredAccess],
    las: &[LaShowing<'_>],
    recorded_ms: i64,
) -> QueryResult<()> {
    insert_rows(
        conn,
        "INSERT INTO audit_events (id, recorded_ms, nhs_number, agent_sub, agent_org, \
         care_setting, accessor_role, interaction, agent_name, org_name, job_role, \
         job_role_code, observer, entities, attendances, attendance_settings, \
         attendance_window_days, attendance_pattern, pattern_reached, shown, told_las, content) \
         VALUES ",
        "",
        accesses,
        |row, a| {
            let count = |n: Option<i32>| n.map(i64::from);
            row.text(&a.id)
                .big_int(a.recorded_ms)
                .text(&a.nhs_number)
                .text(&a.agent_sub)
                .text(&a.agent_org)
                .text(&a.care_setting)
                .text(&a.accessor_role)
                .text(&a.interaction)
                .opt_text(a.agent_name.as_deref())
                .opt_text(a.org_name.as_deref())
                .opt_text(a.job_role.as_deref())
                .opt_text(a.job_role_code.as_deref())
                .text(&a.observer)
                .text(&a.entities)
                .opt_big_int(count(a.attendances))
                .opt_big_int(count(a.attendance_settings))
                .opt_big_int(count(a.attendance_window_days))
                .opt_boolean(a.attendance_pattern)
                .boolean(a.pattern_reached)
                .boolean(a.shown)
                .boolean(a.told_las)
                .text(&a.content);
        },
    )?;
    // Keyed by each new row's `seq`, found by its id (no RETURNING through MultiConnection).
    insert_rows(
        conn,
        "INSERT INTO audit_las (la_ods, recorded_ms, event_seq, shown, pattern_reached) \
         SELECT v.column1, v.column2, e.seq, v.column4 = 1, v.column5 = 1 FROM (VALUES ",
        ") AS v JOIN audit_events e ON e.id = v.column3",
        las,
        |row, la| {
            row.text(la.la_ods)
                .big_int(recorded_ms)
                .text(la.audit_event_id)
                .big_int(i64::from(la.shown))
                .big_int(i64::from(la.pattern_marked));
        },
    )
}

/// The Subscriptions of these LAs: (LA, id, status).
pub fn subscriptions_of(
    conn: &mut DbConn,
    las: &[&str],
) -> QueryResult<Vec<(String, String, String)>> {
    if las.is_empty() {
        return Ok(Vec::new());
    }
    subscriptions::table
        .filter(subscriptions::la_ods.eq_any(las))
        .select((
            subscriptions::la_ods,
            subscriptions::id,
            subscriptions::status,
        ))
        .load(conn)
}

/// Queues notifications, due at once: (access id, Subscription id) each.
pub fn queue_notifications(
    conn: &mut DbConn,
    notifications: &[(&str, &str)],
    at_ms: i64,
) -> QueryResult<()> {
    let ids: Vec<String> = notifications
        .iter()
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let rows: Vec<OutboxRow<'_>> = notifications
        .iter()
        .zip(&ids)
        .map(|((audit_event_id, subscription_id), id)| OutboxRow {
            id,
            audit_event_id,
            subscription_id,
            created_ms: at_ms,
            next_attempt_ms: at_ms,
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO notification_outbox (id, audit_event_id, subscription_id, created_ms, \
         next_attempt_ms) VALUES ",
        "",
        &rows,
        |values, row| {
            values
                .text(row.id)
                .text(row.audit_event_id)
                .text(row.subscription_id)
                .big_int(row.created_ms)
                .big_int(row.next_attempt_ms);
        },
    )
}

/// Which accesses a history search returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    /// One child's shown accesses (health-care).
    Child { nhs_number: String },
    /// One child's accesses shown to one LA (its history search).
    ChildForLa { nhs_number: String, ods: String },
    /// Every access to one child, scheduled and collapsed ones too (operations).
    ChildAll { nhs_number: String },
    /// Every shown access to any child of one LA (the LA's pull).
    La { ods: String },
    /// Every access (operations).
    All,
}

/// A page of stored accesses, newest first, and the total.
pub struct EventPage {
    pub accesses: Vec<StoredAccess>,
    pub total: i64,
}

/// Which accesses of a scope a history shows: recorded in `[from_ms, to_ms)`, and only those
/// marked as reaching a repeated-attendance pattern (or only those not) when `pattern` says.
#[derive(Debug, Clone)]
pub struct HistoryWindow {
    pub from_ms: i64,
    pub to_ms: i64,
    pub pattern: Option<bool>,
    /// `_id`: only these accesses.
    pub ids: Option<Vec<String>>,
    /// Only the accesses of this person (SDS user id) / from this organisation (ODS code).
    pub agent_sub: Option<String>,
    pub agent_org: Option<String>,
    /// Leave governance report searches out (the reports never return them).
    pub without_governance: bool,
}

/// The accesses in `scope` and `window`, as one boxed query (unordered).
fn selection<'a>(
    scope: &'a HistoryScope,
    window: &'a HistoryWindow,
) -> audit_events::BoxedQuery<'a, super::DbBackend> {
    let (from_ms, to_ms, pattern) = (window.from_ms, window.to_ms, window.pattern);
    let mut q = audit_events::table
        .into_boxed::<super::DbBackend>()
        .filter(audit_events::recorded_ms.ge(from_ms))
        .filter(audit_events::recorded_ms.lt(to_ms));
    // An LA's marks are its own (`audit_las`); the others see the child's.
    let la_scoped = matches!(
        scope,
        HistoryScope::ChildForLa { .. } | HistoryScope::La { .. }
    );
    if let Some(marked) = pattern.filter(|_| !la_scoped) {
        q = q.filter(audit_events::pattern_reached.eq(marked));
    }
    if let Some(ids) = &window.ids {
        q = q.filter(audit_events::id.eq_any(ids.clone()));
    }
    if let Some(sub) = &window.agent_sub {
        q = q.filter(audit_events::agent_sub.eq(sub.clone()));
    }
    if let Some(org) = &window.agent_org {
        q = q.filter(audit_events::agent_org.eq(org.clone()));
    }
    if window.without_governance {
        q = q.filter(audit_events::accessor_role.ne("governance"));
    }
    match scope {
        HistoryScope::Child { nhs_number } => {
            q = q
                .filter(audit_events::nhs_number.eq(nhs_number.clone()))
                .filter(audit_events::shown.eq(true));
        }
        HistoryScope::ChildAll { nhs_number } => {
            q = q.filter(audit_events::nhs_number.eq(nhs_number.clone()));
        }
        HistoryScope::ChildForLa { nhs_number, ods } => {
            // Probed per event of the child (few), not every event shown to the LA.
            q = q
                .filter(audit_events::nhs_number.eq(nhs_number.clone()))
                .filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "EXISTS (SELECT 1 FROM audit_las WHERE audit_las.event_seq = audit_events.seq AND audit_las.shown AND audit_las.la_ods = ",
                    )
                    .bind::<diesel::sql_types::Text, _>(ods.clone())
                    .sql(match pattern {
                        Some(true) => " AND audit_las.pattern_reached)",
                        Some(false) => " AND NOT audit_las.pattern_reached)",
                        None => ")",
                    }),
                );
        }
        HistoryScope::La { ods } => {
            let shown = || {
                audit_las::table
                    .filter(audit_las::la_ods.eq(ods.clone()))
                    .filter(audit_las::shown.eq(true))
                    .filter(audit_las::recorded_ms.ge(from_ms))
                    .filter(audit_las::recorded_ms.lt(to_ms))
            };
            q = match pattern {
                Some(marked) => q.filter(
                    audit_events::seq.eq_any(
                        shown()
                            .filter(audit_las::pattern_reached.eq(marked))
                            .select(audit_las::event_seq),
                    ),
                ),
                None => q.filter(audit_events::seq.eq_any(shown().select(audit_las::event_seq))),
            };
        }
        HistoryScope::All => {}
    }
    q
}

/// The accesses in `scope` and `window`, `(limit, offset)`, newest first (or oldest first).
pub fn history(
    conn: &mut DbConn,
    scope: &HistoryScope,
    window: &HistoryWindow,
    (limit, offset): (i64, i64),
    oldest_first: bool,
) -> QueryResult<EventPage> {
    let filtered = || selection(scope, window);
    let ordered = if oldest_first {
        filtered().order((audit_events::recorded_ms.asc(), audit_events::seq.asc()))
    } else {
        filtered().order((audit_events::recorded_ms.desc(), audit_events::seq.desc()))
    };
    let accesses: Vec<StoredAccess> = ordered
        .limit(limit)
        .offset(offset)
        .select(StoredAccess::as_select())
        .load(conn)?;
    let total = if offset == 0 && (accesses.len() as i64) < limit {
        accesses.len() as i64
    } else {
        filtered().count().get_result(conn)?
    };
    Ok(EventPage { accesses, total })
}

/// How an access concerns one of its LAs.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct LaOfAccess {
    pub la_ods: String,
    /// Shown to it (its history, pull and notifications).
    pub shown: bool,
    /// Its repeated-attendance mark.
    pub pattern_marked: bool,
}

/// The next `limit` accesses of a report, oldest first, after `after` (the last access read:
/// its recorded instant and seq). Read in chunks by key, a report of any size holds one chunk
/// in memory, and each chunk is an index range, not an offset walked again.
pub fn report_chunk(
    conn: &mut DbConn,
    scope: &HistoryScope,
    window: &HistoryWindow,
    after: Option<(i64, i64)>,
    limit: i64,
) -> QueryResult<Vec<StoredAccess>> {
    let mut q = selection(scope, window);
    if let Some((recorded_ms, seq)) = after {
        q = q.filter(
            audit_events::recorded_ms
                .gt(recorded_ms)
                .or(audit_events::recorded_ms
                    .eq(recorded_ms)
                    .and(audit_events::seq.gt(seq))),
        );
    }
    q.order((audit_events::recorded_ms.asc(), audit_events::seq.asc()))
        .limit(limit)
        .select(StoredAccess::as_select())
        .load(conn)
}

/// How many accesses a report holds.
pub fn report_count(
    conn: &mut DbConn,
    scope: &HistoryScope,
    window: &HistoryWindow,
) -> QueryResult<i64> {
    selection(scope, window).count().get_result(conn)
}

/// A stored access, and the LAs it concerns.
pub struct StoredEvent {
    pub access: StoredAccess,
    pub las: Vec<LaOfAccess>,
}

/// One access by its AuditEvent id.
pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<StoredEvent>> {
    let found: Option<StoredAccess> = audit_events::table
        .filter(audit_events::id.eq(id))
        .select(StoredAccess::as_select())
        .first(conn)
        .optional()?;
    let Some(access) = found else {
        return Ok(None);
    };
    let las = audit_las::table
        .filter(audit_las::event_seq.eq(access.seq))
        .select((
            audit_las::la_ods,
            audit_las::shown,
            audit_las::pattern_reached,
        ))
        .load(conn)?;
    Ok(Some(StoredEvent { access, las }))
}

/// Which of these accesses (by seq) are LA `ods`'s repeated-attendance marks.
pub fn la_marks(conn: &mut DbConn, ods: &str, seqs: &[i64]) -> QueryResult<Vec<i64>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    audit_las::table
        .filter(audit_las::la_ods.eq(ods))
        .filter(audit_las::pattern_reached.eq(true))
        .filter(audit_las::event_seq.eq_any(seqs))
        .select(audit_las::event_seq)
        .load(conn)
}
