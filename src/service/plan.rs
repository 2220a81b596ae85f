//! Plans (EpisodeOfCare) and their Flags. A plan and its Flag are always written in the same
//! transaction; the Flag has the plan's id.

use serde_json::Value;

use super::organization::{find_la, LaCache};
use super::part::PartCache;
use super::{
    check_if_match, next_version, parse_content, require_live, same_content, write_version,
    NewVersion, Written,
};
use crate::auth::{Action, Caller};
use crate::db::models::ResourceRow;
use crate::db::store::{self, NewResource};
use crate::db::{write_transaction_with, DbConn, Nesting};
use crate::error::{FhirError, Issue, SpineCode};
use crate::fhir::episode_of_care::{normalise, Plan, PlanStatus};
use crate::fhir::organization::referenced_ods;
use crate::fhir::{flag, ResourceType};
use crate::validation::Profiles;
use diesel::QueryResult;

const PLAN: ResourceType = ResourceType::EpisodeOfCare;
const FLAG: ResourceType = ResourceType::Flag;

/// A plan body that passed its profile and business rules.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub resource: Value,
    pub plan: Plan,
}

impl PlanInput {
    /// Validates a body against the EpisodeOfCare profile and the business rules, reporting
    /// every problem of both at once (`Profiles::merge`).
    pub fn check(profiles: &Profiles, resource: Value) -> Result<PlanInput, FhirError> {
        let issues = profiles.validate("EpisodeOfCare", "EpisodeOfCare", &resource);
        match Plan::from_resource(&resource) {
            Ok(plan) if issues.is_empty() => Ok(PlanInput {
                resource: normalise(resource, &plan),
                plan,
            }),
            Ok(_) => Err(FhirError::Invalid(issues)),
            Err(rules) => Err(FhirError::Invalid(Profiles::merge(issues, rules))),
        }
    }
}

/// Whether the profile or the rules found fault with a plan's managing LA reference (then
/// the LA is not looked up: its fault is reported already).
fn faults_managing_la(issues: &[Issue]) -> bool {
    issues.iter().any(|i| {
        i.expression
            .as_deref()
            .is_some_and(|e| e.starts_with("EpisodeOfCare.managingOrganization"))
    })
}

/// A plan body checked for a write: the profile and the business rules. When it has problems,
/// the known-LA rule is checked as well, so an upload learns every problem in one response (a
/// valid body's LA is looked up by the write itself, in its transaction).
pub fn check_for_write(
    conn: &mut DbConn,
    profiles: &Profiles,
    resource: Value,
) -> Result<PlanInput, FhirError> {
    let managing_la = referenced_ods(resource.get("managingOrganization"));
    match PlanInput::check(profiles, resource) {
        Err(FhirError::Invalid(mut issues)) => {
            if let Some(ods) = managing_la.filter(|_| !faults_managing_la(&issues)) {
                issues.extend(check_known_la(conn, &ods)?);
            }
            Err(FhirError::Invalid(issues))
        }
        other => other,
    }
}

/// Every problem `$validate` reports for a plan: what a write checks, the known-LA rule, and
/// that the plan is the caller's to write (an error issue here, where a write answers 403).
pub fn validation_issues(
    conn: &mut DbConn,
    profiles: &Profiles,
    caller: &Caller,
    resource: Value,
) -> Result<Vec<Issue>, FhirError> {
    let managing_la = referenced_ods(resource.get("managingOrganization"));
    let mut issues = match PlanInput::check(profiles, resource) {
        Ok(_) => vec![],
        Err(FhirError::Invalid(issues)) => issues,
        Err(other) => return Err(other),
    };
    if let Some(ods) = managing_la.filter(|_| !faults_managing_la(&issues)) {
        if let Err(FhirError::Forbidden(reason)) = caller.la_scope().admit(&ods) {
            issues.push(Issue::at(
                "forbidden",
                SpineCode::AccessDenied,
                MANAGING_LA,
                format!("{reason}: the plan is managed by {ods}"),
            ));
        }
        issues.extend(check_known_la(conn, &ods)?);
    }
    Ok(issues)
}

/// Plan writes by one caller at one instant, and how they run: alone (each its own
/// transaction, a nested one a savepoint) or in bulk (an upload's transaction: nested writes
/// fold into it, and a lost race goes up to the upload, which runs the entry again). Each LA is
/// looked up once.
pub struct PlanWrites<'a> {
    pub caller: &'a Caller,
    pub now: i64,
    pub nesting: Nesting,
    las: LaCache,
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
    fn may_retry(&self) -> bool {
        self.nesting == Nesting::Savepoint
    }

    /// The plan holding an identifier: as the part knows it, else from the database.
    fn holder(&self, conn: &mut DbConn, system: &str, value: &str) -> QueryResult<Option<String>> {
        match self.part.as_ref().and_then(|p| p.holder(system, value)) {
            Some(known) => Ok(known.map(str::to_string)),
            None => store::find_by_identifier(conn, PLAN.as_str(), system, value),
        }
    }

    /// The current row of a plan or Flag: as the part knows it, else from the database.
    fn current(
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
    fn before_write(&mut self, conn: &mut DbConn, id: &str) -> QueryResult<()> {
        match self.part.as_mut() {
            Some(part) => part.before_write(conn, id),
            None => Ok(()),
        }
    }
}

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
    let now = w.now;
    let content = parse_content(&row)?;
    w.before_write(conn, &row.id)?;
    store::release_identifiers(conn, PLAN.as_str(), &row.id)?;
    write_version(
        conn,
        PLAN,
        &row.id,
        content,
        Some(&row),
        NewVersion::Deleted,
        now,
    )?;
    if let Some(flag_row) = w.current(conn, FLAG, &row.id)?.filter(|f| !f.deleted) {
        let flag_content = parse_content(&flag_row)?;
        write_version(
            conn,
            FLAG,
            &row.id,
            flag_content,
            Some(&flag_row),
            NewVersion::Deleted,
            now,
        )?;
    }
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

/// Where a plan names its managing LA: the known-LA and own-LA rules report here.
pub const MANAGING_LA: &str = "EpisodeOfCare.managingOrganization.identifier.value";

/// The known-LA rule's issue: a plan's managing LA must be registered.
pub fn unknown_la_issue(ods: &str) -> Issue {
    Issue::invalid(
        MANAGING_LA,
        format!("{ods} is not a registered local authority"),
    )
}

/// The known-LA rule on its own: `None` when `ods` is a registered LA.
pub fn check_known_la(conn: &mut DbConn, ods: &str) -> Result<Option<Issue>, FhirError> {
    Ok(find_la(conn, ods)?.is_none().then(|| unknown_la_issue(ods)))
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
    let Some(part) = w.part.as_mut() else {
        claim_identifier(conn, plan, &id)?;
        let row = write_version(
            conn,
            PLAN,
            &id,
            input.resource.clone(),
            None,
            NewVersion::Live(&plan.index_entries()),
            now,
        )?;
        write_version(
            conn,
            FLAG,
            &id,
            flag_content,
            None,
            NewVersion::Live(&flag::index_entries(plan)),
            now,
        )?;
        return Ok(Written { row, created: true });
    };
    // In an upload's part: written with the part's other new plans (`PartCache::flush`).
    let row = next_version(PLAN, &id, input.resource.clone(), None, false, now);
    part.defer(
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
    );
    Ok(Written { row, created: true })
}

/// The plan's Flag as `new_flag`: a new version unless the live one already says the same
/// (a deleted or missing Flag is written again).
fn write_flag(
    conn: &mut DbConn,
    id: &str,
    plan: &Plan,
    new_flag: Value,
    current: Option<&ResourceRow>,
    now: i64,
) -> Result<(), FhirError> {
    if let Some(live) = current.filter(|row| !row.deleted) {
        if same_content(&parse_content(live)?, &new_flag) {
            return Ok(());
        }
    }
    write_version(
        conn,
        FLAG,
        id,
        new_flag,
        current,
        NewVersion::Live(&flag::index_entries(plan)),
        now,
    )?;
    Ok(())
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
    let row = write_version(
        conn,
        PLAN,
        &id,
        input.resource.clone(),
        Some(&current),
        NewVersion::Live(&plan.index_entries()),
        now,
    )?;
    let new_flag = flag::derive(&id, plan, &org_id, &la);
    let flag_row = w.current(conn, FLAG, &id)?;
    write_flag(conn, &id, plan, new_flag, flag_row.as_ref(), now)?;
    Ok(Written {
        row,
        created: false,
    })
}
