//! `/Organization`: the local authorities (SPEC §3 Organization). Everyone reads; operations
//! registers and changes them; an LA changes only its own phone numbers.

use actix_web::web;

use super::extract::FhirBody;
use super::write::{validation_outcome, Writing};
use super::{fixed_type_paths, instance, instance_history, stored_type, type_level};
use crate::app::respond::FhirResponse;
use crate::auth::Action;
use crate::error::{FhirError, FhirResult};
use crate::fhir::ResourceType;
use crate::service::organization;

const TYPE: ResourceType = ResourceType::Organization;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The search first (no pattern to match), the fixed paths before `/{id}`, which would
    // take them for an id.
    cfg.service(type_level(TYPE).create(create).build())
        .service(stored_type(TYPE, "/$validate").post(validate).build());
    fixed_type_paths(cfg, TYPE);
    cfg.service(instance(TYPE).put(update).build());
    instance_history(cfg, TYPE);
}

/// `POST /Organization` (operations): registers an LA.
#[tracing::instrument(skip_all, fields(fhir.interaction = "create", fhir.type = "Organization"))]
async fn create(w: Writing, body: FhirBody) -> FhirResult<FhirResponse> {
    w.require(Action::WriteOrganization)?;
    let resource = body.resource(TYPE.as_str())?;
    let la = organization::check(&w.state().profiles, &resource)?;
    w.respond(move |conn, caller, now| organization::create(conn, caller, resource, la, now))
        .await
}

/// `PUT /Organization/{id}`: operations changes anything but the ODS code; an LA its telecom.
#[tracing::instrument(skip_all, fields(fhir.interaction = "update", fhir.type = "Organization"))]
async fn update(w: Writing, id: web::Path<String>, body: FhirBody) -> FhirResult<FhirResponse> {
    w.require(Action::UpdateOwnOrganizationTelecom)?;
    let (id, resource, version) = w.update_parts(TYPE, id, body)?;
    let la = organization::check(&w.state().profiles, &resource)?;
    w.respond(move |conn, caller, now| {
        organization::update(conn, caller, &id, resource, la, version, now)
    })
    .await
}

/// `POST /Organization/$validate`: the profile and the LA rules; writes nothing.
#[tracing::instrument(skip_all, fields(fhir.interaction = "validate", fhir.type = "Organization"))]
async fn validate(w: Writing, body: FhirBody) -> FhirResult<FhirResponse> {
    w.validating(TYPE)?;
    let resource = body.resource(TYPE.as_str())?;
    let issues = match organization::check(&w.state().profiles, &resource) {
        Ok(_) => vec![],
        Err(FhirError::Invalid(issues)) => issues,
        Err(other) => return Err(other),
    };
    Ok(validation_outcome(&issues))
}
