//! `/EpisodeOfCare`: the plans (SPEC §3 EpisodeOfCare). An LA writes its own (each write also
//! writes the plan's Flag); health-care reads one child at a time; operations reads all.

use actix_web::web;
use serde_json::Value;

use super::extract::{if_match, if_none_exist, FhirBody};
use super::write::{validation_outcome, Writing};
use super::{fixed_type_paths, instance, instance_history, stored_type, type_level};
use crate::app::respond::FhirResponse;
use crate::auth::Action;
use crate::db::DbConn;
use crate::error::FhirResult;
use crate::fhir::ResourceType;
use crate::service::plan::{self, PlanInput, PlanWrites};
use crate::service::{conditional_identifier, Written};

const TYPE: ResourceType = ResourceType::EpisodeOfCare;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The search first (no pattern to match), the fixed paths before `/{id}`, which would
    // take them for an id.
    cfg.service(
        type_level(TYPE)
            .create(create)
            .put(conditional_update)
            .delete(conditional_delete)
            .build(),
    )
    .service(stored_type(TYPE, "/$validate").post(validate).build());
    fixed_type_paths(cfg, TYPE);
    cfg.service(instance(TYPE).put(update).delete(delete).build());
    instance_history(cfg, TYPE);
}

/// Checks a plan body for a write (`plan::check_for_write`), then runs `write` with it.
async fn write_plan<F>(w: Writing, resource: Value, write: F) -> FhirResult<FhirResponse>
where
    F: FnOnce(&mut DbConn, &mut PlanWrites<'_>, &PlanInput) -> FhirResult<Written> + Send + 'static,
{
    let profiles = w.state().profiles.clone();
    w.respond(move |conn, caller, now| {
        let input = plan::check_for_write(conn, &profiles, resource)?;
        write(conn, &mut PlanWrites::alone(caller, now), &input)
    })
    .await
}

/// `POST /EpisodeOfCare` (with `If-None-Exist`: at most one plan per identifier).
#[tracing::instrument(skip_all, fields(fhir.interaction = "create", fhir.type = "EpisodeOfCare"))]
async fn create(w: Writing, body: FhirBody) -> FhirResult<FhirResponse> {
    w.require(Action::WritePlan)?;
    let resource = body.resource(TYPE.as_str())?;
    let condition = if_none_exist(w.req())?
        .map(|q| conditional_identifier(TYPE, &q))
        .transpose()?;
    write_plan(w, resource, move |conn, writes, input| {
        plan::create(conn, writes, input, condition.as_ref())
    })
    .await
}

/// `PUT /EpisodeOfCare/{id}`: a new version (none when nothing changed).
#[tracing::instrument(skip_all, fields(fhir.interaction = "update", fhir.type = "EpisodeOfCare"))]
async fn update(w: Writing, id: web::Path<String>, body: FhirBody) -> FhirResult<FhirResponse> {
    w.require(Action::WritePlan)?;
    let (id, resource, version) = w.update_parts(TYPE, id, body)?;
    write_plan(w, resource, move |conn, writes, input| {
        plan::update(conn, writes, &id, input, version)
    })
    .await
}

/// `PUT /EpisodeOfCare?identifier=system|value`: the idempotent upsert of a daily upload.
#[tracing::instrument(skip_all, fields(fhir.interaction = "update-conditional", fhir.type = "EpisodeOfCare"))]
async fn conditional_update(w: Writing, body: FhirBody) -> FhirResult<FhirResponse> {
    w.require(Action::WritePlan)?;
    let identifier = conditional_identifier(TYPE, w.req().query_string())?;
    let resource = body.resource(TYPE.as_str())?;
    let version = if_match(w.req())?;
    write_plan(w, resource, move |conn, writes, input| {
        plan::upsert(conn, writes, &identifier, input, version)
    })
    .await
}

/// `DELETE /EpisodeOfCare/{id}`: the plan and its Flag are gone (410) from then on.
#[tracing::instrument(skip_all, fields(fhir.interaction = "delete", fhir.type = "EpisodeOfCare"))]
async fn delete(w: Writing, id: web::Path<String>) -> FhirResult<FhirResponse> {
    w.run(move |conn, caller, now| plan::delete(conn, &mut PlanWrites::alone(caller, now), &id))
        .await?;
    Ok(FhirResponse::no_content())
}

/// `DELETE /EpisodeOfCare?identifier=system|value`.
#[tracing::instrument(skip_all, fields(fhir.interaction = "delete-conditional", fhir.type = "EpisodeOfCare"))]
async fn conditional_delete(w: Writing) -> FhirResult<FhirResponse> {
    let identifier = conditional_identifier(TYPE, w.req().query_string())?;
    w.run(move |conn, caller, now| {
        plan::delete_by_identifier(conn, &mut PlanWrites::alone(caller, now), &identifier)
    })
    .await?;
    Ok(FhirResponse::no_content())
}

/// `POST /EpisodeOfCare/$validate`: every problem a write would meet; writes nothing.
#[tracing::instrument(skip_all, fields(fhir.interaction = "validate", fhir.type = "EpisodeOfCare"))]
async fn validate(w: Writing, body: FhirBody) -> FhirResult<FhirResponse> {
    w.validating(TYPE)?;
    let resource = body.resource(TYPE.as_str())?;
    let profiles = w.state().profiles.clone();
    let issues = w
        .run(move |conn, caller, _| plan::validation_issues(conn, &profiles, caller, resource))
        .await?;
    Ok(validation_outcome(&issues))
}
