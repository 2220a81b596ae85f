//! Plans (EpisodeOfCare) and their Flags. A plan and its Flag are always written in the same
//! transaction; the Flag has the plan's id.

mod check;
mod writes;

use serde_json::Value;

use super::{
    check_if_match, next_version, parse_content, require_live, same_content, NewVersion, Written,
};
use crate::auth::{Action, Caller};
use crate::db::models::ResourceRow;
use crate::db::store::{self, NewResource};
use crate::db::{write_transaction_with, DbConn, Nesting};
use crate::error::{FhirError, Issue};
use crate::fhir::episode_of_care::{Plan, PlanStatus};
use crate::fhir::index::IndexEntries;
use crate::fhir::organization::referenced_ods;
use crate::fhir::{flag, ResourceType};
use diesel::QueryResult;

pub use check::{
    check_for_write, check_known_la, unknown_la_issue, validation_issues, PlanInput, MANAGING_LA,
};
use writes::{write_versions, Version};

pub use writes::PlanWrites;

const PLAN: ResourceType = ResourceType::EpisodeOfCare;
const FLAG: ResourceType = ResourceType::Flag;

/// What a plan write needs to know before it starts: the caller may write plans, for its own LA.
fn authorise(caller: &Caller, plan: &Plan) -> Result<(), FhirError> {
    caller.require(Action::WritePlan)?;
    caller.la_scope().admit(&plan.managing_ods)
}

fn duplicate(plan: &Plan) -> FhirError {
    FhirError::Conflict {
        expression: Some("EpisodeOfCare.identifier".into()),
        reason: format!(
            "a plan with identifier {}|{} already exists",
            plan.identifier_system, plan.identifier_value
        ),
    }
}

/// POST: creates a plan, or with `if_none_exist` returns the plan that already holds that
/// identifier. Two racing conditional creates cannot both create: the identifier is claimed
/// under a unique key, and the loser re-reads and returns the winner.
pub fn create(
    conn: &mut DbConn,
    w: &mut PlanWrites<'_>,
    input: &PlanInput,
    if_none_exist: Option<&(String, String)>,
) -> Result<Written, FhirError> {
    authorise(w.caller, &input.plan)?;
    let nesting = w.nesting;
    let mut attempt = |conn: &mut DbConn| {
        write_transaction_with(conn, nesting, |conn| {
            if let Some((system, value)) = if_none_exist {
                if let Some(existing) = existing_plan(conn, w, system, value)? {
                    return Ok(Written {
                        row: existing,
                        created: false,
                    });
                }
            }
            insert(conn, w, input, Lookup::NotYet)
        })
    };
    // The loser of a race re-reads the winner's plan, in a transaction of its own: inside a
    // folded upload transaction the conflict goes up, and the upload runs the entry again.
    match attempt(conn) {
        Err(FhirError::Conflict { .. })
            if if_none_exist.is_some() && nesting == Nesting::Savepoint =>
        {
            attempt(conn)
        }
        other => other,
    }
    .map_err(|e| match e {
        FhirError::Conflict { .. } => duplicate(&input.plan),
        other => other,
    })
}

/// PUT by id: a new version (none when nothing changed).
pub fn update(
    conn: &mut DbConn,
    w: &mut PlanWrites<'_>,
    id: &str,
    input: &PlanInput,
    if_match: Option<i64>,
) -> Result<Written, FhirError> {
    authorise(w.caller, &input.plan)?;
    write_transaction_with(conn, w.nesting, |conn| {
        let current = own_live_plan(w, w.current(conn, PLAN, id)?, id)?;
        replace(conn, w, current, input, if_match)
    })
}

/// PUT `EpisodeOfCare?identifier=system|value`: updates the plan holding that identifier, or
/// creates it (the idempotent upsert of the daily upload).
pub fn upsert(
    conn: &mut DbConn,
    w: &mut PlanWrites<'_>,
    identifier: &(String, String),
    input: &PlanInput,
    if_match: Option<i64>,
) -> Result<Written, FhirError> {
    authorise(w.caller, &input.plan)?;
    let (system, value) = identifier;
    let mut mismatches = Vec::new();
    for (element, body, url) in [
        ("system", &input.plan.identifier_system, system),
        ("value", &input.plan.identifier_value, value),
    ] {
        if body != url {
            mismatches.push(Issue::invalid(
                format!("EpisodeOfCare.identifier[0].{element}"),
                format!("the identifier {element} in the body must match the one in the URL"),
            ));
        }
    }
    if !mismatches.is_empty() {
        return Err(FhirError::Invalid(mismatches));
    }
    let may_retry = w.may_retry();
    let nesting = w.nesting;
    let mut attempt = |conn: &mut DbConn| {
        write_transaction_with(conn, nesting, |conn| {
            match w.holder(conn, system, value)? {
                Some(id) => {
                    let current = own_live_plan(w, w.current(conn, PLAN, &id)?, &id)?;
                    replace(conn, w, current, input, if_match)
                }
                // If-Match names a version of an existing plan: there is none.
                None if if_match.is_some() => Err(FhirError::VersionMismatch {
                    expected: if_match.unwrap_or_default().to_string(),
                    actual: 0,
                }),
                None => insert(conn, w, input, Lookup::Absent),
            }
        })
    };
    match attempt(conn) {
        Err(FhirError::Conflict { .. }) if may_retry => attempt(conn),
        other => other,
    }
}

/// DELETE by id: the plan and its Flag answer 410 from then on. Deleting a deleted plan is a
/// no-op (FHIR: delete is idempotent).
pub fn delete(conn: &mut DbConn, w: &mut PlanWrites<'_>, id: &str) -> Result<(), FhirError> {
    w.caller.require(Action::WritePlan)?;
    write_transaction_with(conn, w.nesting, |conn| {
        match own_plan(w, w.current(conn, PLAN, id)?, id)? {
            row if row.deleted => Ok(()),
            row => delete_row(conn, w, row),
        }
    })
}

/// DELETE `EpisodeOfCare?identifier=system|value`: deletes the plan holding it, if any.
pub fn delete_by_identifier(
    conn: &mut DbConn,
    w: &mut PlanWrites<'_>,
    identifier: &(String, String),
) -> Result<bool, FhirError> {
    w.caller.require(Action::WritePlan)?;
    let (system, value) = identifier;
    write_transaction_with(conn, w.nesting, |conn| {
        let Some(id) = w.holder(conn, system, value)? else {
            return Ok(false);
        };
        let row = own_live_plan(w, w.current(conn, PLAN, &id)?, &id)?;
        delete_row(conn, w, row).map(|_| true)
    })
}

fn delete_row(
    conn: &mut DbConn,
    w: &mut PlanWrites<'_>,
    row: ResourceRow,
) -> Result<(), FhirError> {
    let content = parse_content(&row)?;
    w.before_write(conn, &row.id)?;
    store::release_identifiers(conn, PLAN.as_str(), &row.id)?;
    let flag_row = w.current(conn, FLAG, &row.id)?.filter(|f| !f.deleted);
    let flag = match &flag_row {
        Some(flag_row) => Some(Version {
            content: parse_content(flag_row)?,
            previous: Some(flag_row),
            state: NewVersion::Deleted,
        }),
        None => None,
    };
    let plan = Version {
        content,
        previous: Some(&row),
        state: NewVersion::Deleted,
    };
    write_versions(conn, &row.id, plan, flag, w.now)?;
    Ok(())
}

/// The live plan holding an identifier, checked against the caller's LA.
fn existing_plan(
    conn: &mut DbConn,
    w: &PlanWrites<'_>,
    system: &str,
    value: &str,
) -> Result<Option<ResourceRow>, FhirError> {
    let Some(id) = w.holder(conn, system, value)? else {
        return Ok(None);
    };
    own_live_plan(w, w.current(conn, PLAN, &id)?, &id).map(Some)
}

/// Plan `id` as its row stands, once it is known to be the caller's: another LA's plan is 403
/// whether live, withdrawn or deleted, so that no answer tells an LA of another's plans.
fn own_plan(
    w: &PlanWrites<'_>,
    row: Option<ResourceRow>,
    id: &str,
) -> Result<ResourceRow, FhirError> {
    let row = row.ok_or_else(|| FhirError::NotFound {
        ty: PLAN.as_str().into(),
        id: id.into(),
    })?;
    w.caller
        .la_scope()
        .admit(&managing_ods(&parse_content(&row)?)?)?;
    Ok(row)
}

/// `own_plan`, and live (a deleted plan is 410 to its own LA).
fn own_live_plan(
    w: &PlanWrites<'_>,
    row: Option<ResourceRow>,
    id: &str,
) -> Result<ResourceRow, FhirError> {
    require_live(Some(own_plan(w, row, id)?), PLAN, id)
}

fn managing_ods(content: &Value) -> Result<String, FhirError> {
    referenced_ods(content.get("managingOrganization"))
        .ok_or_else(|| FhirError::internal("a stored plan has no managing LA"))
}

fn unknown_la(plan: &Plan) -> FhirError {
    FhirError::Invalid(vec![unknown_la_issue(&plan.managing_ods)])
}

/// Claims the plan's identifier for plan `id` (fails when another plan holds it).
fn claim_identifier(conn: &mut DbConn, plan: &Plan, id: &str) -> QueryResult<()> {
    store::claim_identifier(
        conn,
        PLAN.as_str(),
        &plan.identifier_system,
        &plan.identifier_value,
        id,
    )
}

/// Whether the plan's identifier was already looked up in this transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lookup {
    NotYet,
    /// Looked up, and no plan holds it.
    Absent,
}

fn insert(
    conn: &mut DbConn,
    w: &mut PlanWrites<'_>,
    input: &PlanInput,
    lookup: Lookup,
) -> Result<Written, FhirError> {
    let (plan, now) = (&input.plan, w.now);
    let (org_id, la) = w
        .las
        .find(conn, &plan.managing_ods)?
        .ok_or_else(|| unknown_la(plan))?;
    if lookup == Lookup::NotYet
        && w.holder(conn, &plan.identifier_system, &plan.identifier_value)?
            .is_some()
    {
        return Err(duplicate(plan));
    }
    // Time-ordered ids: the plan, its Flag and their index rows are appended to the tables'
    // keys instead of landing on random pages (what keeps a large upload fast).
    let id = uuid::Uuid::now_v7().to_string();
    let flag_content = flag::derive(&id, plan, &org_id, &la);
    let row = next_version(PLAN, &id, input.resource.clone(), None, false, now);
    w.write_new(
        conn,
        NewResource {
            row: row.clone(),
            entries: plan.index_entries(),
            identifier: Some((
                plan.identifier_system.clone(),
                plan.identifier_value.clone(),
            )),
        },
        NewResource {
            row: next_version(FLAG, &id, flag_content, None, false, now),
            entries: flag::index_entries(plan),
            identifier: None,
        },
    )?;
    Ok(Written { row, created: true })
}

/// The plan's Flag as `new_flag` (with `entries`): a new version unless the live one already
/// says the same (a deleted or missing Flag is written again).
fn flag_version<'a>(
    new_flag: Value,
    current: Option<&'a ResourceRow>,
    entries: &'a IndexEntries,
) -> Result<Option<Version<'a>>, FhirError> {
    if let Some(live) = current.filter(|row| !row.deleted) {
        if same_content(&parse_content(live)?, &new_flag) {
            return Ok(None);
        }
    }
    Ok(Some(Version {
        content: new_flag,
        previous: current,
        state: NewVersion::Live(entries),
    }))
}

/// When an update changes the plan's identifier: the new one must be free, and is claimed.
fn move_identifier(
    conn: &mut DbConn,
    w: &PlanWrites<'_>,
    existing: &Value,
    plan: &Plan,
    id: &str,
) -> Result<(), FhirError> {
    let at = |pointer: &str| existing.pointer(pointer).and_then(Value::as_str);
    let unchanged = at("/identifier/0/system") == Some(plan.identifier_system.as_str())
        && at("/identifier/0/value") == Some(plan.identifier_value.as_str());
    if unchanged {
        return Ok(());
    }
    if w.holder(conn, &plan.identifier_system, &plan.identifier_value)?
        .is_some()
    {
        return Err(duplicate(plan));
    }
    store::release_identifiers(conn, PLAN.as_str(), id)?;
    claim_identifier(conn, plan, id)?;
    Ok(())
}

/// Writes `input` over the current plan: ownership of both the old and the new version,
/// If-Match, the status rules, the identifier's uniqueness, then plan and Flag together.
fn replace(
    conn: &mut DbConn,
    w: &mut PlanWrites<'_>,
    current: ResourceRow,
    input: &PlanInput,
    if_match: Option<i64>,
) -> Result<Written, FhirError> {
    let now = w.now;
    let existing = parse_content(&current)?;
    check_if_match(if_match, &current)?;
    let plan = &input.plan;
    let old_status = existing
        .get("status")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<PlanStatus>().ok());
    if old_status == Some(PlanStatus::EnteredInError) && plan.status != PlanStatus::EnteredInError {
        return Err(FhirError::ForbiddenUpdate {
            expression: Some("EpisodeOfCare.status".into()),
            reason: "a plan marked entered-in-error cannot be changed back".into(),
        });
    }
    if existing
        .pointer("/patient/identifier/value")
        .and_then(Value::as_str)
        != Some(plan.patient.as_str())
    {
        return Err(FhirError::ForbiddenUpdate {
            expression: Some("EpisodeOfCare.patient".into()),
            reason: "a plan's patient cannot change: withdraw the plan (entered-in-error) and create one for the right child".into(),
        });
    }
    if same_content(&existing, &input.resource) {
        return Ok(Written {
            row: current,
            created: false,
        });
    }
    let (org_id, la) = w
        .las
        .find(conn, &plan.managing_ods)?
        .ok_or_else(|| unknown_la(plan))?;
    let id = current.id.clone();
    w.before_write(conn, &id)?;
    move_identifier(conn, w, &existing, plan, &id)?;
    let new_flag = flag::derive(&id, plan, &org_id, &la);
    let flag_row = w.current(conn, FLAG, &id)?;
    let (plan_entries, flag_entries) = (plan.index_entries(), flag::index_entries(plan));
    let flag = flag_version(new_flag, flag_row.as_ref(), &flag_entries)?;
    let plan = Version {
        content: input.resource.clone(),
        previous: Some(&current),
        state: NewVersion::Live(&plan_entries),
    };
    let row = write_versions(conn, &id, plan, flag, now)?;
    Ok(Written {
        row,
        created: false,
    })
}
