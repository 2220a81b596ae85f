//! The notification outbox: claiming due rows (so that each is delivered by one dispatcher at
//! a time, across processes) and recording each attempt.

use diesel::prelude::*;

use super::audit::StoredAccess;
use super::schema::{audit_events, audit_las, notification_outbox as outbox, subscriptions};
use super::{write_transaction, DbConn};

/// A claimed notification with what delivering it needs.
#[derive(Debug, Clone, Queryable)]
pub struct Due {
    pub id: String,
    pub subscription_id: String,
    pub attempts: i64,
    /// The access notified (its AuditEvent is the payload).
    pub access: StoredAccess,
    pub subscription: String,
    pub subscription_status: String,
    /// The LA notified (the Subscription's).
    pub la_ods: String,
    /// The access is this LA's repeated-attendance mark.
    pub pattern_marked: Option<bool>,
}

/// Claims up to `limit` due notifications for this dispatcher until `lease_until`. On
/// PostgreSQL rows another process is claiming are skipped (`FOR UPDATE SKIP LOCKED`), so
/// several servers never take the same row; SQLite has one writer, and the lease does the rest.
/// A row whose lease ran out (its dispatcher died mid-delivery) is due again.
pub fn claim(conn: &mut DbConn, now: i64, lease_until: i64, limit: i64) -> QueryResult<Vec<Due>> {
    let ids = write_transaction(conn, |conn| {
        let due = outbox::table
            .filter(outbox::delivered_ms.is_null())
            .filter(outbox::next_attempt_ms.le(now))
            .filter(outbox::lease_until_ms.le(now))
            .order(outbox::next_attempt_ms.asc())
            .limit(limit)
            .select(outbox::id);
        let ids: Vec<String> = match conn {
            DbConn::Postgres(pg) => due.for_update().skip_locked().load(pg)?,
            DbConn::Sqlite(sqlite) => due.load(sqlite)?,
        };
        if !ids.is_empty() {
            diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
                .set(outbox::lease_until_ms.eq(lease_until))
                .execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(ids)
    })?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    outbox::table
        .inner_join(audit_events::table.on(audit_events::id.eq(outbox::audit_event_id)))
        .inner_join(subscriptions::table)
        .left_join(
            audit_las::table.on(audit_las::event_seq
                .eq(audit_events::seq)
                .and(audit_las::la_ods.eq(subscriptions::la_ods))),
        )
        .filter(outbox::id.eq_any(&ids))
        .select((
            outbox::id,
            outbox::subscription_id,
            outbox::attempts,
            StoredAccess::as_select(),
            subscriptions::content,
            subscriptions::status,
            subscriptions::la_ods,
            audit_las::pattern_reached.nullable(),
        ))
        .load(conn)
}

pub fn delivered(conn: &mut DbConn, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::delivered_ms.eq(Some(now)),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::lease_until_ms.eq(0),
            outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A failed attempt: tried again at `next_attempt_ms`.
pub fn failed(conn: &mut DbConn, id: &str, next_attempt_ms: i64, error: &str) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::next_attempt_ms.eq(next_attempt_ms),
            outbox::lease_until_ms.eq(0),
            outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A notification that will never be sent (its Subscription was turned off): closed with why.
pub fn abandoned(conn: &mut DbConn, id: &str, now: i64, reason: &str) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::delivered_ms.eq(Some(now)),
            outbox::lease_until_ms.eq(0),
            outbox::last_error.eq(Some(reason)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// How many notifications are undelivered, and when the oldest of them was queued.
pub fn backlog(conn: &mut DbConn) -> QueryResult<(i64, Option<i64>)> {
    use diesel::dsl::{count_star, min};
    let undelivered = outbox::table.filter(outbox::delivered_ms.is_null());
    undelivered
        .select((count_star(), min(outbox::created_ms)))
        .first::<(i64, Option<i64>)>(conn)
}
