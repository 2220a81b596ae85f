//! Checking a plan body before it is written: its profile, the business rules, the known-LA
//! rule, and (for `$validate`) that it is the caller's to write.

use serde_json::Value;

use crate::auth::Caller;
use crate::db::DbConn;
use crate::error::{FhirError, Issue, SpineCode};
use crate::fhir::episode_of_care::{normalise, Plan};
use crate::fhir::organization::referenced_ods;
use crate::service::organization::find_la;
use crate::validation::Profiles;

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
