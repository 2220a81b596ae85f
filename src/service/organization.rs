//! Local authorities: created and changed by `operations`; an LA may change only its own
//! telecom (SPEC §2).

use std::collections::HashMap;

use serde_json::Value;

use super::{
    check_if_match, parse_content, require_live, same_content, write_version, NewVersion, Written,
};
use crate::auth::{Action, Caller};
use crate::db::{store, write_transaction, DbConn};
use crate::error::FhirError;
use crate::fhir::organization::LocalAuthority;
use crate::fhir::types::ODS_SYSTEM;
use crate::fhir::ResourceType;
use crate::validation::Profiles;

const TY: ResourceType = ResourceType::Organization;

/// Registered LAs already looked up, by ODS code: a plan write looks up its LA, and an upload
/// names the same LA on every entry.
#[derive(Debug, Default)]
pub struct LaCache(HashMap<String, (String, LocalAuthority)>);

impl LaCache {
    /// `find_la`, remembering what it finds.
    pub fn find(
        &mut self,
        conn: &mut DbConn,
        ods: &str,
    ) -> Result<Option<(String, LocalAuthority)>, FhirError> {
        if let Some(found) = self.0.get(ods) {
            return Ok(Some(found.clone()));
        }
        let found = find_la(conn, ods)?;
        if let Some(la) = &found {
            self.0.insert(ods.to_string(), la.clone());
        }
        Ok(found)
    }
}

/// The Organization resource of the LA with this ODS code, if it is registered (an LA's
/// contact details are not about any child: reading them records nothing).
pub fn la_resource(conn: &mut DbConn, ods: &str) -> Result<Option<Value>, FhirError> {
    let Some(id) = store::find_by_identifier(conn, TY.as_str(), ODS_SYSTEM, ods)? else {
        return Ok(None);
    };
    store::current(conn, TY.as_str(), &id)?
        .filter(|row| !row.deleted)
        .map(|row| super::parse_content(&row))
        .transpose()
}

/// The Organization id and details of the LA with this ODS code, if it is registered.
pub fn find_la(
    conn: &mut DbConn,
    ods: &str,
) -> Result<Option<(String, LocalAuthority)>, FhirError> {
    let Some(id) = store::find_by_identifier(conn, TY.as_str(), ODS_SYSTEM, ods)? else {
        return Ok(None);
    };
    let Some(row) = store::current(conn, TY.as_str(), &id)?.filter(|r| !r.deleted) else {
        return Ok(None);
    };
    let la = LocalAuthority::from_resource(&parse_content(&row)?)
        .map_err(|_| FhirError::internal("a stored Organization is not a valid LA"))?;
    Ok(Some((id, la)))
}

pub fn create(
    conn: &mut DbConn,
    caller: &Caller,
    resource: Value,
    la: LocalAuthority,
    now: i64,
) -> Result<Written, FhirError> {
    caller.require(Action::WriteOrganization)?;
    write_transaction(conn, |conn| {
        if store::find_by_identifier(conn, TY.as_str(), ODS_SYSTEM, &la.ods)?.is_some() {
            return Err(duplicate(&la.ods));
        }
        let id = uuid::Uuid::new_v4().to_string();
        store::claim_identifier(conn, TY.as_str(), ODS_SYSTEM, &la.ods, &id)?;
        let row = write_version(
            conn,
            TY,
            &id,
            normalise(resource, &la),
            None,
            NewVersion::Live(&la.index_entries()),
            now,
        )?;
        Ok(Written { row, created: true })
    })
    .map_err(|e| match e {
        FhirError::Conflict { .. } => duplicate(&la.ods),
        other => other,
    })
}

pub fn update(
    conn: &mut DbConn,
    caller: &Caller,
    id: &str,
    resource: Value,
    la: LocalAuthority,
    if_match: Option<i64>,
    now: i64,
) -> Result<Written, FhirError> {
    let any_organization = caller.may(Action::WriteOrganization);
    if !any_organization {
        caller.require(Action::UpdateOwnOrganizationTelecom)?;
    }
    write_transaction(conn, |conn| {
        let current = require_live(store::current(conn, TY.as_str(), id)?, TY, id)?;
        check_if_match(if_match, &current)?;
        let existing = parse_content(&current)?;
        let existing_la = LocalAuthority::from_resource(&existing)
            .map_err(|_| FhirError::internal("a stored Organization is not a valid LA"))?;
        let resource = normalise(resource, &la);
        if !any_organization {
            // An LA may change its own phone numbers, and nothing else.
            if !caller.la_scope().covers(&existing_la.ods) {
                return Err(FhirError::Forbidden(
                    "a local authority may only update its own Organization".into(),
                ));
            }
            let without_telecom = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("telecom");
                }
                v
            };
            if !same_content(&without_telecom(&existing), &without_telecom(&resource)) {
                return Err(FhirError::Forbidden(
                    "a local authority may only change its Organization's telecom".into(),
                ));
            }
        }
        if same_content(&existing, &resource) {
            return Ok(Written {
                row: current,
                created: false,
            });
        }
        if existing_la.ods != la.ods {
            // The LA's plans and Flags name it by this code: a new code would orphan them
            // (and a new Organization with the old code would inherit them).
            return Err(FhirError::ForbiddenUpdate {
                expression: Some("Organization.identifier".into()),
                reason: format!(
                    "an LA's ODS code is fixed once created ({} cannot become {}): its plans are held against it",
                    existing_la.ods, la.ods
                ),
            });
        }
        let row = write_version(
            conn,
            TY,
            id,
            resource,
            Some(&current),
            NewVersion::Live(&la.index_entries()),
            now,
        )?;
        Ok(Written {
            row,
            created: false,
        })
    })
}

/// The stored form: the ODS code upper-cased, as searches and plan references use it.
fn normalise(mut resource: Value, la: &LocalAuthority) -> Value {
    if let Some(ident) = resource
        .pointer_mut("/identifier/0")
        .and_then(Value::as_object_mut)
    {
        ident.insert("value".into(), Value::from(la.ods.clone()));
    }
    resource
}

fn duplicate(ods: &str) -> FhirError {
    FhirError::Conflict {
        expression: Some("Organization.identifier".into()),
        reason: format!("an Organization with ODS code {ods} already exists"),
    }
}

/// Validates an Organization body against its profile and reads it as an LA, reporting the
/// problems of both at once.
pub fn check(profiles: &Profiles, resource: &Value) -> Result<LocalAuthority, FhirError> {
    let issues = profiles.validate("Organization", "Organization", resource);
    match LocalAuthority::from_resource(resource) {
        Ok(la) if issues.is_empty() => Ok(la),
        Ok(_) => Err(FhirError::Invalid(issues)),
        Err(rules) => Err(FhirError::Invalid(Profiles::merge(issues, rules))),
    }
}
