//! Subscription rows: an LA's notification endpoints, and their delivery health.

use diesel::prelude::*;

use super::schema::subscriptions;
use super::{DbBackend, DbConn};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub la_ods: String,
    pub version_id: i64,
    pub last_updated: i64,
    pub status: String,
    pub consecutive_failures: i64,
    pub content: String,
}

pub fn insert(conn: &mut DbConn, row: &SubscriptionRow) -> QueryResult<()> {
    diesel::insert_into(subscriptions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<SubscriptionRow>> {
    subscriptions::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

/// Replaces a row if it is still at `expected_version` (false when another writer won).
pub fn replace(
    conn: &mut DbConn,
    row: &SubscriptionRow,
    expected_version: i64,
) -> QueryResult<bool> {
    let changed = diesel::update(
        subscriptions::table
            .filter(subscriptions::id.eq(&row.id))
            .filter(subscriptions::version_id.eq(expected_version)),
    )
    .set((
        subscriptions::version_id.eq(row.version_id),
        subscriptions::last_updated.eq(row.last_updated),
        subscriptions::status.eq(&row.status),
        subscriptions::consecutive_failures.eq(row.consecutive_failures),
        subscriptions::content.eq(&row.content),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    let n = diesel::delete(subscriptions::table.find(id)).execute(conn)?;
    Ok(n == 1)
}

/// Subscriptions of `la` (all LAs when `None`), optionally of one status, newest first.
pub fn search(
    conn: &mut DbConn,
    la: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<SubscriptionRow>, i64)> {
    let filtered = || {
        let mut q = subscriptions::table.into_boxed::<DbBackend>();
        if let Some(la) = la {
            q = q.filter(subscriptions::la_ods.eq(la.to_string()));
        }
        if let Some(status) = status {
            q = q.filter(subscriptions::status.eq(status.to_string()));
        }
        q
    };
    let rows = filtered()
        .order((subscriptions::last_updated.desc(), subscriptions::id.asc()))
        .limit(limit)
        .offset(offset)
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    let total = filtered().count().get_result(conn)?;
    Ok((rows, total))
}
