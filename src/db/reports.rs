//! Upload reports: each batch upload's batch-response, kept for its LA.

use crate::search::parse::Paging;
use diesel::prelude::*;

use super::schema::upload_reports;
use super::{DbBackend, DbConn};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_reports)]
pub struct ReportRow {
    pub id: String,
    pub la_ods: String,
    pub created_ms: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub content: String,
}

pub fn insert(conn: &mut DbConn, row: &ReportRow) -> QueryResult<()> {
    diesel::insert_into(upload_reports::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<ReportRow>> {
    upload_reports::table
        .find(id)
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
}

/// An LA's reports (all LAs' when `None`) created in `[from_ms, to_ms)`, newest first.
pub fn search(
    conn: &mut DbConn,
    la: Option<&str>,
    (from_ms, to_ms): (i64, i64),
    ids: Option<&[String]>,
    paging: &Paging,
) -> QueryResult<(Vec<ReportRow>, i64)> {
    let filtered = || {
        let mut q = upload_reports::table
            .into_boxed::<DbBackend>()
            .filter(upload_reports::created_ms.ge(from_ms))
            .filter(upload_reports::created_ms.lt(to_ms));
        if let Some(la) = la {
            q = q.filter(upload_reports::la_ods.eq(la.to_string()));
        }
        if let Some(ids) = ids {
            q = q.filter(upload_reports::id.eq_any(ids.to_vec()));
        }
        q
    };
    let ordered = if paging.oldest_first() {
        filtered().order((upload_reports::created_ms.asc(), upload_reports::id.asc()))
    } else {
        filtered().order((upload_reports::created_ms.desc(), upload_reports::id.desc()))
    };
    let rows = ordered
        .limit(paging.limit())
        .offset(paging.skip())
        .select(ReportRow::as_select())
        .load(conn)?;
    let total = filtered().count().get_result(conn)?;
    Ok((rows, total))
}
