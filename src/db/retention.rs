//! Retention's rows (SPEC §7; the policy is `crate::retention`): finding plans past
//! retention and removing them with every version and index row, and removing old upload
//! reports and AuditEvents.

use diesel::prelude::*;

use super::schema::{
    audit_events, resource_versions, resources, search_dates, search_tokens, unique_identifiers,
    upload_reports,
};
use super::DbConn;

const PLAN: &str = "EpisodeOfCare";
const FLAG: &str = "Flag";

/// A plan past retention, as it was when found: it is removed only if still that version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub id: String,
    pub version_id: i64,
}

/// Up to `limit` plans past retention: those whose `period.end` day key is at most
/// `ended_by_day`; and those without an end, finished, cancelled, withdrawn or deleted, and
/// unchanged since before `closed_before_ms`.
pub fn expired_plans(
    conn: &mut DbConn,
    ended_by_day: i64,
    closed_before_ms: i64,
    limit: i64,
) -> QueryResult<Vec<Expired>> {
    let with_end = || {
        search_dates::table
            .filter(search_dates::resource_type.eq(PLAN))
            .filter(search_dates::param.eq("date"))
            .filter(search_dates::end_ms.lt(i64::MAX))
    };
    let ended = with_end()
        .filter(search_dates::end_ms.le(ended_by_day))
        .select(search_dates::resource_id);
    let closed = search_tokens::table
        .filter(search_tokens::resource_type.eq(PLAN))
        .filter(search_tokens::param.eq("status"))
        .filter(search_tokens::value.eq_any(["finished", "cancelled", "entered-in-error"]))
        .select(search_tokens::resource_id);
    let rows: Vec<(String, i64)> = resources::table
        .filter(resources::resource_type.eq(PLAN))
        .filter(
            resources::id.eq_any(ended).or(resources::last_updated
                .lt(closed_before_ms)
                .and(resources::id.ne_all(with_end().select(search_dates::resource_id)))
                .and(resources::deleted.eq(true).or(resources::id.eq_any(closed)))),
        )
        .select((resources::id, resources::version_id))
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, version_id)| Expired { id, version_id })
        .collect())
}

/// Removes the plans (and their Flags) that are still the version found expired; a plan
/// changed since (re-opened, say) stays. Returns how many were removed.
pub fn remove_unchanged(conn: &mut DbConn, expired: &[Expired]) -> QueryResult<usize> {
    let mut ids = Vec::with_capacity(expired.len());
    for plan in expired {
        let deleted = diesel::delete(
            resources::table
                .filter(resources::resource_type.eq(PLAN))
                .filter(resources::id.eq(&plan.id))
                .filter(resources::version_id.eq(plan.version_id)),
        )
        .execute(conn)?;
        if deleted == 1 {
            ids.push(plan.id.clone());
        }
    }
    remove(conn, &ids)?;
    Ok(ids.len())
}

/// Removes plans and their Flags: every version and index row.
fn remove(conn: &mut DbConn, ids: &[String]) -> QueryResult<()> {
    for ty in [PLAN, FLAG] {
        diesel::delete(
            search_tokens::table
                .filter(search_tokens::resource_type.eq(ty))
                .filter(search_tokens::resource_id.eq_any(ids)),
        )
        .execute(conn)?;
        diesel::delete(
            search_dates::table
                .filter(search_dates::resource_type.eq(ty))
                .filter(search_dates::resource_id.eq_any(ids)),
        )
        .execute(conn)?;
        diesel::delete(
            unique_identifiers::table
                .filter(unique_identifiers::resource_type.eq(ty))
                .filter(unique_identifiers::resource_id.eq_any(ids)),
        )
        .execute(conn)?;
        diesel::delete(
            resource_versions::table
                .filter(resource_versions::resource_type.eq(ty))
                .filter(resource_versions::id.eq_any(ids)),
        )
        .execute(conn)?;
        diesel::delete(
            resources::table
                .filter(resources::resource_type.eq(ty))
                .filter(resources::id.eq_any(ids)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// Removes the upload reports made before `before_ms`; returns how many.
pub fn remove_reports_before(conn: &mut DbConn, before_ms: i64) -> QueryResult<usize> {
    diesel::delete(upload_reports::table.filter(upload_reports::created_ms.lt(before_ms)))
        .execute(conn)
}

/// Removes the AuditEvents recorded before `before_ms` (their LA rows and outbox rows go with
/// them, by foreign key); returns how many.
pub fn remove_audit_events_before(conn: &mut DbConn, before_ms: i64) -> QueryResult<usize> {
    diesel::delete(audit_events::table.filter(audit_events::recorded_ms.lt(before_ms)))
        .execute(conn)
}
