//! Audit storage: recording accesses (with their outbox rows) and the access-history queries.

use diesel::prelude::*;

use super::schema::{audit_event_las, audit_events, notification_outbox, subscriptions};
use super::DbConn;

/// Subscriptions in every state but this one receive notifications (an `error` one keeps
/// being tried so that it can return to `active`).
pub const SILENT_STATUS: &str = "off";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One access to one child, ready to store.
#[derive(Debug, Clone)]
pub struct NewAccess {
    pub id: String,
    pub recorded_ms: i64,
    pub nhs_number: String,
    pub agent_sub: String,
    pub agent_org: String,
    pub care_setting: &'static str,
    pub accessor_role: &'static str,
    /// Whether it can appear in the history and be notified: health-care and unscheduled.
    pub reportable: bool,
    /// The LAs whose plans were returned.
    pub la_ods: Vec<String>,
    pub content: String,
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct EventRow<'a> {
    id: &'a str,
    recorded_ms: i64,
    nhs_number: &'a str,
    agent_sub: &'a str,
    agent_org: &'a str,
    care_setting: &'a str,
    accessor_role: &'a str,
    shown: bool,
    content: &'a str,
}

#[derive(Insertable)]
#[diesel(table_name = audit_event_las)]
struct EventLaRow<'a> {
    la_ods: &'a str,
    recorded_ms: i64,
    audit_event_id: &'a str,
}

#[derive(Insertable)]
#[diesel(table_name = notification_outbox)]
struct OutboxRow<'a> {
    id: &'a str,
    audit_event_id: &'a str,
    subscription_id: &'a str,
    created_ms: i64,
    next_attempt_ms: i64,
}

/// Stores one access inside the caller's transaction. A reportable access is shown unless the
/// same person at the same organisation saw this child within the last 24 hours (the first view
/// counts); a shown access gets one outbox row per delivering Subscription of each of its LAs.
/// Returns how many notifications were queued.
pub fn record(conn: &mut DbConn, access: &NewAccess) -> QueryResult<usize> {
    let shown = access.reportable && !seen_within_a_day(conn, access)?;
    diesel::insert_into(audit_events::table)
        .values(EventRow {
            id: &access.id,
            recorded_ms: access.recorded_ms,
            nhs_number: &access.nhs_number,
            agent_sub: &access.agent_sub,
            agent_org: &access.agent_org,
            care_setting: access.care_setting,
            accessor_role: access.accessor_role,
            shown,
            content: &access.content,
        })
        .execute(conn)?;
    let mut queued = 0;
    for la in &access.la_ods {
        diesel::insert_into(audit_event_las::table)
            .values(EventLaRow {
                la_ods: la,
                recorded_ms: access.recorded_ms,
                audit_event_id: &access.id,
            })
            .execute(conn)?;
        if !shown {
            continue;
        }
        let targets: Vec<String> = subscriptions::table
            .filter(subscriptions::la_ods.eq(la))
            .filter(subscriptions::status.ne(SILENT_STATUS))
            .select(subscriptions::id)
            .load(conn)?;
        for subscription_id in &targets {
            diesel::insert_into(notification_outbox::table)
                .values(OutboxRow {
                    id: &uuid::Uuid::now_v7().to_string(),
                    audit_event_id: &access.id,
                    subscription_id,
                    created_ms: access.recorded_ms,
                    next_attempt_ms: access.recorded_ms,
                })
                .execute(conn)?;
            queued += 1;
        }
    }
    Ok(queued)
}

fn seen_within_a_day(conn: &mut DbConn, access: &NewAccess) -> QueryResult<bool> {
    let earlier: i64 = audit_events::table
        .filter(audit_events::nhs_number.eq(&access.nhs_number))
        .filter(audit_events::recorded_ms.gt(access.recorded_ms - DAY_MS))
        .filter(audit_events::shown.eq(true))
        .filter(audit_events::agent_sub.eq(&access.agent_sub))
        .filter(audit_events::agent_org.eq(&access.agent_org))
        .count()
        .get_result(conn)?;
    Ok(earlier > 0)
}

/// Which accesses a history search returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    /// One child's shown accesses (health-care and the child's LA).
    Child { nhs_number: String },
    /// Every access to one child, scheduled and collapsed ones too (operations).
    ChildAll { nhs_number: String },
    /// Every shown access to any child of one LA (the LA's pull).
    La { ods: String },
    /// Every access (operations).
    All,
}

/// A page of stored AuditEvents (their JSON), newest first, and the total.
pub struct EventPage {
    pub contents: Vec<String>,
    pub total: i64,
}

/// Accesses in `scope` recorded in `[from_ms, to_ms)`, newest first.
pub fn history(
    conn: &mut DbConn,
    scope: &HistoryScope,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<EventPage> {
    let filtered = || {
        let mut q = audit_events::table
            .into_boxed::<super::DbBackend>()
            .filter(audit_events::recorded_ms.ge(from_ms))
            .filter(audit_events::recorded_ms.lt(to_ms));
        match scope {
            HistoryScope::Child { nhs_number } => {
                q = q
                    .filter(audit_events::nhs_number.eq(nhs_number.clone()))
                    .filter(audit_events::shown.eq(true));
            }
            HistoryScope::ChildAll { nhs_number } => {
                q = q.filter(audit_events::nhs_number.eq(nhs_number.clone()));
            }
            HistoryScope::La { ods } => {
                q = q.filter(audit_events::shown.eq(true)).filter(
                    audit_events::id.eq_any(
                        audit_event_las::table
                            .filter(audit_event_las::la_ods.eq(ods.clone()))
                            .filter(audit_event_las::recorded_ms.ge(from_ms))
                            .filter(audit_event_las::recorded_ms.lt(to_ms))
                            .select(audit_event_las::audit_event_id),
                    ),
                );
            }
            HistoryScope::All => {}
        }
        q
    };
    let contents: Vec<String> = filtered()
        .order((audit_events::recorded_ms.desc(), audit_events::seq.desc()))
        .limit(limit)
        .offset(offset)
        .select(audit_events::content)
        .load(conn)?;
    let total = if offset == 0 && (contents.len() as i64) < limit {
        contents.len() as i64
    } else {
        filtered().count().get_result(conn)?
    };
    Ok(EventPage { contents, total })
}

/// A stored AuditEvent: its JSON, whether the access histories show it, and the LAs it
/// concerns.
pub struct StoredEvent {
    pub content: String,
    pub shown: bool,
    pub las: Vec<String>,
}

/// One AuditEvent by id.
pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<StoredEvent>> {
    let event: Option<(String, bool)> = audit_events::table
        .filter(audit_events::id.eq(id))
        .select((audit_events::content, audit_events::shown))
        .first(conn)
        .optional()?;
    let Some((content, shown)) = event else {
        return Ok(None);
    };
    let las = audit_event_las::table
        .filter(audit_event_las::audit_event_id.eq(id))
        .select(audit_event_las::la_ods)
        .load(conn)?;
    Ok(Some(StoredEvent {
        content,
        shown,
        las,
    }))
}
