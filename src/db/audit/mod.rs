//! Audit storage: the rows of accesses (with their outbox rows), and (`history`) the
//! access-history queries. Which accesses are shown, and to whom, is decided in `crate::audit`.

mod history;

use diesel::prelude::*;

use crate::db::raw::{insert_rows, values, RawStatement, RowValues, ROWS_PER_STATEMENT};
use crate::db::schema::{audit_events, audit_las, subscriptions};
use crate::db::{per_key, DbConn};

pub use history::{
    find, history, la_marks, report_chunk, report_count, EventPage, HistoryScope, HistoryWindow,
    LaOfAccess, StoredEvent,
};

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
    /// The first reportable access of its child, setting and hour: the attendances are
    /// counted from these (`crate::attendance`).
    pub opens_attendance_hour: bool,
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
        // The simple query protocol: one round trip (a statement with binds is prepared first).
        diesel::connection::SimpleConnection::batch_execute(
            c,
            &format!("SELECT pg_advisory_xact_lock({AUDIT_WRITE_LOCK})"),
        )?;
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

/// An earlier reportable access (health-care, unscheduled) to one of a batch's children that
/// decides a new one: for the 24-hour check (the same person's views shown somewhere), the
/// attendances (the first of each setting and hour) and the per-LA attendance mark (those in a
/// pattern, and the LAs they were shown to).
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
    pub opens_attendance_hour: bool,
}

/// The earlier reportable accesses to these children since `since_ms` that decide a batch's
/// accesses: those shown somewhere, those that told their LAs, and those that opened an
/// attendance hour; one statement, from the partial index that holds only these
/// (`audit_events_deciding`, whose terms its WHERE repeats), through the child key
/// (`per_key`). However often a child was looked at, it adds at most one row a setting and
/// hour, and one a person a day.
pub fn accesses_that_decide(
    conn: &mut DbConn,
    children: &[&str],
    since_ms: i64,
) -> QueryResult<Vec<RecentView>> {
    let deciding = || {
        audit_events::table
            .filter(audit_events::recorded_ms.ge(since_ms))
            .filter(
                audit_events::shown
                    .or(audit_events::told_las)
                    .or(audit_events::opens_attendance_hour),
            )
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
                audit_events::opens_attendance_hour,
            ))
    };
    per_key(
        conn,
        children,
        |conn, child| {
            deciding()
                .filter(audit_events::nhs_number.eq(*child))
                .load(conn)
        },
        |conn, children| {
            deciding()
                .filter(audit_events::nhs_number.eq_any(children))
                .load(conn)
        },
    )
}

/// An hour, in milliseconds.
const HOUR_MS: i64 = 60 * 60 * 1000;

/// The instant the hour of `ms` began. England's offset from UTC is a whole number of hours,
/// so an hour lies within one UK day.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
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

const INSERT_ACCESSES: &str = "INSERT INTO audit_events (id, recorded_ms, nhs_number, \
     agent_sub, agent_org, care_setting, accessor_role, interaction, agent_name, org_name, \
     job_role, job_role_code, observer, entities, attendances, attendance_settings, \
     attendance_window_days, attendance_pattern, pattern_reached, shown, told_las, \
     opens_attendance_hour, content) VALUES ";
const INSERT_LAS: &str =
    "INSERT INTO audit_las (la_ods, recorded_ms, event_seq, shown, pattern_reached) \
     SELECT v.column1, v.column2, e.seq, v.column4 = 1, v.column5 = 1 FROM (VALUES ";

/// Stores a batch of accesses, all recorded at `recorded_ms`, and the LAs each was shown to,
/// inside the caller's transaction (which holds `lock_and_stamp`'s lock): a few multi-row
/// statements, not a few per access. An LA an access concerns but was neither shown nor
/// marked for gets no row: every read of `audit_las` asks for those shown (or marked).
pub fn insert_all(
    conn: &mut DbConn,
    accesses: &[&StoredAccess],
    las: &[LaShowing<'_>],
    recorded_ms: i64,
) -> QueryResult<()> {
    let las: Vec<&LaShowing<'_>> = las.iter().filter(|l| l.shown || l.pattern_marked).collect();
    if let DbConn::Postgres(_) = conn {
        return insert_all_at_once(conn, accesses, &las, recorded_ms);
    }
    insert_rows(conn, INSERT_ACCESSES, "", accesses, access_values)?;
    // Keyed by each new row's `seq`, found by its id (no RETURNING through MultiConnection).
    insert_rows(
        conn,
        INSERT_LAS,
        ") AS v JOIN audit_events e ON e.id = v.column3",
        &las,
        |row, la| la_values(row, la, recorded_ms),
    )
}

/// On PostgreSQL, each statement is a round trip the audit lock is held through: the accesses
/// and their LAs go in one statement each `ROWS_PER_STATEMENT` accesses, the LAs keyed by the
/// `seq` the insert of their access returns.
fn insert_all_at_once(
    conn: &mut DbConn,
    accesses: &[&StoredAccess],
    las: &[&LaShowing<'_>],
    recorded_ms: i64,
) -> QueryResult<()> {
    for chunk in accesses.chunks(ROWS_PER_STATEMENT) {
        let chunk_las: Vec<&&LaShowing<'_>> = las
            .iter()
            .filter(|la| chunk.iter().any(|a| a.id == la.audit_event_id))
            .collect();
        let with_las = !chunk_las.is_empty();
        let mut statement = RawStatement::default();
        if with_las {
            statement.sql("WITH e AS (");
        }
        statement.sql(INSERT_ACCESSES);
        values(&mut statement, chunk, access_values);
        if with_las {
            statement.sql(" RETURNING seq, id) ").sql(INSERT_LAS);
            values(&mut statement, &chunk_las, |row, la| {
                la_values(row, la, recorded_ms);
            });
            statement.sql(") AS v JOIN e ON e.id = v.column3");
        }
        statement.execute(conn)?;
    }
    Ok(())
}

fn access_values(row: &mut RowValues<'_>, a: &&StoredAccess) {
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
        .boolean(a.opens_attendance_hour)
        .text(&a.content);
}

fn la_values(row: &mut RowValues<'_>, la: &LaShowing<'_>, recorded_ms: i64) {
    row.text(la.la_ods)
        .big_int(recorded_ms)
        .text(la.audit_event_id)
        .big_int(i64::from(la.shown))
        .big_int(i64::from(la.pattern_marked));
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
