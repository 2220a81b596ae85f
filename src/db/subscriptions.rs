//! Subscription rows: an LA's notification endpoints, and their delivery health.

use crate::search::parse::Paging;
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
/// What a Subscription search asks for: a status, ids (`_id`), a `_lastUpdated` range.
#[derive(Debug, Clone)]
pub struct SubscriptionFilter {
    pub status: Option<String>,
    pub ids: Option<Vec<String>>,
    /// `meta.lastUpdated` in `[from, to)`.
    pub last_updated: (i64, i64),
}

impl Default for SubscriptionFilter {
    fn default() -> Self {
        SubscriptionFilter {
            status: None,
            ids: None,
            last_updated: (i64::MIN, i64::MAX),
        }
    }
}

pub fn search(
    conn: &mut DbConn,
    la: Option<&str>,
    filter: &SubscriptionFilter,
    paging: &Paging,
) -> QueryResult<(Vec<SubscriptionRow>, i64)> {
    let filtered = || {
        let (from, to) = filter.last_updated;
        let mut q = subscriptions::table
            .into_boxed::<DbBackend>()
            .filter(subscriptions::last_updated.ge(from))
            .filter(subscriptions::last_updated.lt(to));
        if let Some(la) = la {
            q = q.filter(subscriptions::la_ods.eq(la.to_string()));
        }
        if let Some(status) = &filter.status {
            q = q.filter(subscriptions::status.eq(status.clone()));
        }
        if let Some(ids) = &filter.ids {
            q = q.filter(subscriptions::id.eq_any(ids.clone()));
        }
        q
    };
    let ordered = if paging.oldest_first() {
        filtered().order((subscriptions::last_updated.asc(), subscriptions::id.asc()))
    } else {
        filtered().order((subscriptions::last_updated.desc(), subscriptions::id.asc()))
    };
    let rows = ordered
        .limit(paging.limit())
        .offset(paging.skip())
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    let total = filtered().count().get_result(conn)?;
    Ok((rows, total))
}

/// How many Subscriptions have this status.
pub fn count_with_status(conn: &mut DbConn, status: &str) -> QueryResult<i64> {
    subscriptions::table
        .filter(subscriptions::status.eq(status))
        .count()
        .get_result(conn)
}
