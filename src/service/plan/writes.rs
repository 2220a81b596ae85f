//! How plan writes run (`PlanWrites`), and where a plan's rows are written.

use diesel::QueryResult;
use serde_json::Value;

use super::{FLAG, PLAN};
use crate::auth::Caller;
use crate::db::models::ResourceRow;
use crate::db::store::{self, NewResource};
use crate::db::{DbConn, Nesting};
use crate::error::FhirError;
use crate::fhir::ResourceType;
use crate::service::organization::LaCache;
use crate::service::part::PartCache;
use crate::service::{write_version, NewVersion};

/// Plan writes by one caller at one instant, and how they run: alone (each its own
/// transaction, a nested one a savepoint) or in bulk (an upload's transaction: nested writes
/// fold into it, and a lost race goes up to the upload, which runs the entry again). Each LA is
/// looked up once.
pub struct PlanWrites<'a> {
    pub caller: &'a Caller,
    pub now: i64,
    pub nesting: Nesting,
    pub(super) las: LaCache,
    /// While an upload runs a part: what its entries share (reads made once, new plans
    /// written together). `None`: every read and write goes to the database as it comes.
    pub part: Option<PartCache>,
}

impl<'a> PlanWrites<'a> {
    /// Writes of their own (the REST interactions).
    pub fn alone(caller: &'a Caller, now: i64) -> PlanWrites<'a> {
        PlanWrites {
            caller,
            now,
            nesting: Nesting::Savepoint,
            las: LaCache::default(),
            part: None,
        }
    }

    /// The entries of an upload, folded into its transaction (`nesting` may be changed back
    /// to savepoints for entries that must stand on their own).
    pub fn bulk(caller: &'a Caller, now: i64) -> PlanWrites<'a> {
        PlanWrites {
            nesting: Nesting::Folded,
            ..PlanWrites::alone(caller, now)
        }
    }

    /// Whether a write that lost a race for its identifier may try again at once: not inside
    /// a folded transaction, which the failure may have aborted.
    pub(super) fn may_retry(&self) -> bool {
        self.nesting == Nesting::Savepoint
    }

    /// The plan holding an identifier: as the part knows it, else from the database.
    pub(super) fn holder(
        &self,
        conn: &mut DbConn,
        system: &str,
        value: &str,
    ) -> QueryResult<Option<String>> {
        match self.part.as_ref().and_then(|p| p.holder(system, value)) {
            Some(known) => Ok(known.map(str::to_string)),
            None => store::find_by_identifier(conn, PLAN.as_str(), system, value),
        }
    }

    /// The current row of a plan or Flag: as the part knows it, else from the database.
    pub(super) fn current(
        &self,
        conn: &mut DbConn,
        ty: ResourceType,
        id: &str,
    ) -> QueryResult<Option<ResourceRow>> {
        match self.part.as_ref().and_then(|p| p.row(ty, id)) {
            Some(known) => Ok(known.cloned()),
            None => store::current(conn, ty.as_str(), id),
        }
    }

    /// Before plan `id` is changed or deleted in the database (`PartCache::before_write`).
    pub(super) fn before_write(&mut self, conn: &mut DbConn, id: &str) -> QueryResult<()> {
        match self.part.as_mut() {
            Some(part) => part.before_write(conn, id),
            None => Ok(()),
        }
    }

    /// A new plan and its Flag. In an upload's part they are held back and written with the
    /// part's other new plans (`PartCache::flush`); alone, they are written at once the same
    /// way, so every new plan's rows are written by `store::insert_new`.
    pub(super) fn write_new(
        &mut self,
        conn: &mut DbConn,
        plan: NewResource,
        flag: NewResource,
    ) -> QueryResult<()> {
        match self.part.as_mut() {
            Some(part) => {
                part.defer(plan, flag);
                Ok(())
            }
            None => {
                let mut alone = PartCache::default();
                alone.defer(plan, flag);
                alone.flush(conn)
            }
        }
    }
}

/// The next version of a plan or of its Flag: what it holds, the version it follows (`None`:
/// a Flag that is missing), and live (with its index entries) or deleted.
pub(super) struct Version<'a> {
    pub(super) content: Value,
    pub(super) previous: Option<&'a ResourceRow>,
    pub(super) state: NewVersion<'a>,
}

/// The next versions of plan `id` and, when it changes, of its Flag: the one place an existing
/// plan's rows are written (a new plan's are written by `PlanWrites::write_new`).
pub(super) fn write_versions(
    conn: &mut DbConn,
    id: &str,
    plan: Version<'_>,
    flag: Option<Version<'_>>,
    now: i64,
) -> Result<ResourceRow, FhirError> {
    let row = write_version(conn, PLAN, id, plan.content, plan.previous, plan.state, now)?;
    if let Some(flag) = flag {
        write_version(conn, FLAG, id, flag.content, flag.previous, flag.state, now)?;
    }
    Ok(row)
}
