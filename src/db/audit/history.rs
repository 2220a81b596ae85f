//! The access-history queries: a scope's accesses in a window, page by page or in report
//! chunks, and one access with its LAs.

use diesel::prelude::*;

use super::StoredAccess;
use crate::db::schema::{audit_events, audit_las};
use crate::db::{DbBackend, DbConn};

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
) -> audit_events::BoxedQuery<'a, DbBackend> {
    let (from_ms, to_ms, pattern) = (window.from_ms, window.to_ms, window.pattern);
    let mut q = audit_events::table
        .into_boxed::<DbBackend>()
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
