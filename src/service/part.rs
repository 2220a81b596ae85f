//! What the entries of one part of an upload share: the plans they name, read in one go before
//! they run, and the plans they create, written in one go after them (`store::insert_new`). The
//! per-entry rules (`plan`) read and write through it, so a part of a few hundred entries costs a
//! few statements instead of a few per entry (a round trip each on PostgreSQL). A plan created
//! outside an upload is written the same way, as a part of one (`PlanWrites::write_new`).

use std::collections::HashMap;

use diesel::QueryResult;

use crate::db::models::ResourceRow;
use crate::db::store::{self, NewResource};
use crate::db::DbConn;
use crate::fhir::ResourceType;

const PLAN: ResourceType = ResourceType::EpisodeOfCare;
const FLAG: ResourceType = ResourceType::Flag;

/// The part's view of the plans its entries name, and the new plans not yet written.
#[derive(Debug, Default)]
pub struct PartCache {
    /// identifier (system, value) → the plan holding it; `None`: no plan holds it.
    holders: HashMap<(String, String), Option<String>>,
    /// (type, id) → the current row of a plan or Flag; `None`: there is none.
    rows: HashMap<(ResourceType, String), Option<ResourceRow>>,
    new_plans: Vec<NewResource>,
    new_flags: Vec<NewResource>,
}

impl PartCache {
    /// Reads the plans (and their Flags) holding these identifiers: three queries.
    pub fn load(conn: &mut DbConn, identifiers: Vec<(String, String)>) -> QueryResult<PartCache> {
        let found = store::find_by_identifiers(conn, PLAN.as_str(), &identifiers)?;
        let mut holders: HashMap<(String, String), Option<String>> =
            identifiers.into_iter().map(|i| (i, None)).collect();
        let ids: Vec<String> = found.iter().map(|(_, _, id)| id.clone()).collect();
        for (system, value, id) in found {
            holders.insert((system, value), Some(id));
        }
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut rows = HashMap::with_capacity(ids.len() * 2);
        for ty in [PLAN, FLAG] {
            for id in &ids {
                rows.insert((ty, id.clone()), None);
            }
            for row in store::current_by_ids(conn, ty.as_str(), &id_refs)? {
                rows.insert((ty, row.id.clone()), Some(row));
            }
        }
        Ok(PartCache {
            holders,
            rows,
            ..PartCache::default()
        })
    }

    /// The plan holding an identifier, when the part knows it.
    pub fn holder(&self, system: &str, value: &str) -> Option<Option<&str>> {
        self.holders
            .get(&(system.to_string(), value.to_string()))
            .map(Option::as_deref)
    }

    /// The current row of a plan or Flag, when the part knows it.
    pub fn row(&self, ty: ResourceType, id: &str) -> Option<Option<&ResourceRow>> {
        self.rows.get(&(ty, id.to_string())).map(Option::as_ref)
    }

    /// A new plan and its Flag, written at `flush`; from now on the part knows them.
    pub fn defer(&mut self, plan: NewResource, flag: NewResource) {
        if let Some(identifier) = plan.identifier.clone() {
            self.holders.insert(identifier, Some(plan.row.id.clone()));
        }
        self.rows
            .insert((PLAN, plan.row.id.clone()), Some(plan.row.clone()));
        self.rows
            .insert((FLAG, flag.row.id.clone()), Some(flag.row.clone()));
        self.new_plans.push(plan);
        self.new_flags.push(flag);
    }

    /// Before a write that goes straight to the database (a change or a deletion of plan
    /// `id`): the new plans are written first, and what the part knew of `id` is forgotten
    /// (read again from the database when needed).
    pub fn before_write(&mut self, conn: &mut DbConn, id: &str) -> QueryResult<()> {
        self.flush(conn)?;
        self.holders
            .retain(|_, holder| holder.as_deref() != Some(id));
        self.rows.retain(|(_, row_id), _| row_id != id);
        Ok(())
    }

    /// Writes the new plans and Flags held back so far.
    pub fn flush(&mut self, conn: &mut DbConn) -> QueryResult<()> {
        if self.new_plans.is_empty() {
            return Ok(());
        }
        store::insert_new(conn, PLAN.as_str(), &std::mem::take(&mut self.new_plans))?;
        store::insert_new(conn, FLAG.as_str(), &std::mem::take(&mut self.new_flags))
    }
}
