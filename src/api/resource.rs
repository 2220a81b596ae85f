//! The FHIR interactions on `/FHIR/R4/{type}…`, for every type with an endpoint. Each handler
//! authenticates (`Caller`), then calls the service, which authorises against the data.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use serde_json::Value;

use super::extract::{care_setting, if_match, if_none_exist, prefer, FhirBody};
use super::respond::FhirResponse;
use super::AppState;
use crate::audit::{self, AccessContext, Returned};
use crate::auth::{Action, Caller};
use crate::db::{self, models::ResourceRow};
use crate::error::{
    information_outcome, operation_outcome, FhirError, FhirResult, Issue, SpineCode,
};
use crate::fhir::audit_event::{AccessKind, CareSetting};
use crate::fhir::organization::referenced_ods;
use crate::fhir::{bundle, ResourceType};
use crate::search;
use crate::service::{self, conditional_identifier, plan::PlanInput, Written};
use crate::validation::Profiles;

fn resource_type(req: &HttpRequest) -> FhirResult<ResourceType> {
    req.match_info()
        .get("type")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| FhirError::NotFound {
            ty: "resource type".into(),
            id: req.path().to_string(),
        })
}

fn version_url(state: &AppState, row: &ResourceRow) -> String {
    format!(
        "{}/{}/{}/_history/{}",
        state.base_url, row.resource_type, row.id, row.version_id
    )
}

fn not_allowed(ty: ResourceType, interaction: &str) -> FhirError {
    FhirError::MethodNotAllowed {
        ty: ty.as_str().into(),
        interaction: interaction.into(),
    }
}

/// The least a role must be allowed to write this type at all: checked before the body is
/// looked at, so a caller who may not write learns nothing from validation.
fn write_action(ty: ResourceType) -> FhirResult<Action> {
    match ty {
        ResourceType::Organization => Ok(Action::UpdateOwnOrganizationTelecom),
        ResourceType::EpisodeOfCare => Ok(Action::WritePlan),
        ResourceType::Flag => Err(not_allowed(ty, "write")),
    }
}

/// Records the accesses a response makes (SPEC §3 AuditEvent); it returns once they are
/// committed, so nothing is shown that was not recorded.
async fn record_access(
    state: &AppState,
    caller: &Caller,
    kind: AccessKind,
    care_setting: CareSetting,
    returned: &[Returned<'_>],
) -> FhirResult<()> {
    let ctx = AccessContext {
        caller,
        kind,
        care_setting,
        now_ms: state.clock.now_ms(),
        observer: &state.base_url,
    };
    state.auditor.record(audit::accesses(&ctx, returned)).await
}

/// The answer to a create or update: 201 with Location when created, else 200.
fn written(state: &AppState, req: &HttpRequest, w: Written) -> FhirResult<FhirResponse> {
    let status = if w.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body: Value = service::parse_content(&w.row)?;
    let location = version_url(state, &w.row);
    Ok(FhirResponse::resource(status, &w.row, body)
        .with_location(location)
        .prefer(prefer(req)))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type, caller.role))]
pub async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    let setting = care_setting(&req)?;
    let (_, id) = path.into_inner();
    let reader = caller.clone();
    let now = state.clock.now_ms();
    let (row, content) = db::run(&state.pool, move |conn| {
        service::read::read(conn, &reader, ty, &id, now)
    })
    .await?;
    let returned = [Returned {
        ty,
        content: &content,
    }];
    record_access(&state, &caller, AccessKind::Read, setting, &returned).await?;
    Ok(FhirResponse::resource(StatusCode::OK, &row, content))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "vread", fhir.type, caller.role))]
pub async fn vread(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    let (_, id, vid) = path.into_inner();
    let version: i64 = vid.parse().map_err(|_| FhirError::VersionNotFound {
        ty: ty.as_str().into(),
        id: id.clone(),
        version: vid.clone(),
    })?;
    let setting = care_setting(&req)?;
    let reader = caller.clone();
    let now = state.clock.now_ms();
    let (row, content) = db::run(&state.pool, move |conn| {
        service::read::vread(conn, &reader, ty, &id, version, now)
    })
    .await?;
    let returned = [Returned {
        ty,
        content: &content,
    }];
    record_access(&state, &caller, AccessKind::VRead, setting, &returned).await?;
    Ok(FhirResponse::resource(StatusCode::OK, &row, content))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "history-instance", fhir.type, caller.role))]
pub async fn history_instance(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    let (_, id) = path.into_inner();
    let setting = care_setting(&req)?;
    let history_id = id.clone();
    let reader = caller.clone();
    let now = state.clock.now_ms();
    let versions = db::run(&state.pool, move |conn| {
        service::read::history(conn, &reader, ty, &history_id, now)
    })
    .await?;
    let returned: Vec<Returned<'_>> = versions
        .iter()
        .filter_map(|(_, content)| content.as_ref().map(|content| Returned { ty, content }))
        .collect();
    record_access(&state, &caller, AccessKind::History, setting, &returned).await?;
    Ok(FhirResponse::ok(bundle::history(
        &state.base_url,
        ty.as_str(),
        &id,
        versions,
    )))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type, caller.role))]
pub async fn search_type(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    let setting = care_setting(&req)?;
    let parsed = search::parse(ty, req.query_string())?;
    let request = parsed.clone();
    let searcher = caller.clone();
    let now = state.clock.now_ms();
    let results = db::run(&state.pool, move |conn| {
        service::search::search(conn, &searcher, &request, now)
    })
    .await?;
    let returned: Vec<Returned<'_>> = results
        .entries
        .iter()
        .filter(|e| e.mode == "match")
        .map(|e| Returned {
            ty,
            content: &e.resource,
        })
        .collect();
    record_access(&state, &caller, AccessKind::Search, setting, &returned).await?;
    Ok(FhirResponse::ok(bundle::searchset_page(
        &state.base_url,
        ty.as_str(),
        &parsed.canonical,
        (parsed.count, parsed.offset),
        results.total,
        results.entries,
    )))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "create", fhir.type, caller.role))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    body: FhirBody,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    caller.require(write_action(ty)?)?;
    let resource = body.resource(ty.as_str())?;
    let now = state.clock.now_ms();
    let w = match ty {
        ResourceType::Organization => {
            caller.require(Action::WriteOrganization)?;
            let la = service::organization::check(&state.profiles, &resource)?;
            db::run(&state.pool, move |conn| {
                service::organization::create(conn, &caller, resource, la, now)
            })
            .await?
        }
        ResourceType::EpisodeOfCare => {
            let condition = if_none_exist(&req)?
                .map(|q| conditional_identifier(ty, &q))
                .transpose()?;
            let input = check_plan(&state, resource).await?;
            db::run(&state.pool, move |conn| {
                service::plan::create(conn, &caller, &input, condition.as_ref(), now)
            })
            .await?
        }
        ResourceType::Flag => return Err(not_allowed(ty, "create")),
    };
    written(&state, &req, w)
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

/// A plan body checked against the profile and the business rules. When it has problems, the
/// known-LA rule is checked as well, so an upload learns every problem in one response (a
/// valid body's LA is looked up by the write itself, in its transaction).
async fn check_plan(state: &AppState, resource: Value) -> FhirResult<PlanInput> {
    let managing_la = referenced_ods(resource.get("managingOrganization"));
    match PlanInput::check(&state.profiles, resource) {
        Err(FhirError::Invalid(mut issues)) => {
            if let Some(ods) = managing_la.filter(|_| !faults_managing_la(&issues)) {
                let unknown = db::run(&state.pool, move |conn| {
                    service::plan::check_known_la(conn, &ods)
                })
                .await?;
                issues.extend(unknown);
            }
            Err(FhirError::Invalid(issues))
        }
        other => other,
    }
}

/// Every problem `$validate` reports for a plan: the profile, the business rules, the known-LA
/// rule and, for a social-care caller, that the plan is managed by its own LA (an error issue
/// here, where a write would answer 403).
async fn plan_issues(state: &AppState, caller: &Caller, resource: Value) -> FhirResult<Vec<Issue>> {
    let managing_la = referenced_ods(resource.get("managingOrganization"));
    let mut issues = match PlanInput::check(&state.profiles, resource) {
        Ok(_) => vec![],
        Err(FhirError::Invalid(issues)) => issues,
        Err(other) => return Err(other),
    };
    if let Some(ods) = managing_la.filter(|_| !faults_managing_la(&issues)) {
        if caller.require_own_la(&ods).is_err() {
            issues.push(Issue::at(
                "forbidden",
                SpineCode::AccessDenied,
                service::plan::MANAGING_LA,
                format!("a local authority may only write its own plans, not those of {ods}"),
            ));
        }
        let unknown = db::run(&state.pool, move |conn| {
            service::plan::check_known_la(conn, &ods)
        })
        .await?;
        issues.extend(unknown);
    }
    Ok(issues)
}

/// FHIR: a PUT body carries the id of the URL.
fn check_body_id(resource: &Value, id: &str) -> FhirResult<()> {
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => Ok(()),
        Some(body_id) => Err(FhirError::Unparseable(format!(
            "the body's id {body_id:?} does not match the URL's id {id:?}"
        ))),
        None => Err(FhirError::Unparseable(
            "an update body must carry the resource id".into(),
        )),
    }
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "update", fhir.type, caller.role))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: FhirBody,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    let (_, id) = path.into_inner();
    caller.require(write_action(ty)?)?;
    let resource = body.resource(ty.as_str())?;
    check_body_id(&resource, &id)?;
    let version = if_match(&req)?;
    let now = state.clock.now_ms();
    let w = match ty {
        ResourceType::Organization => {
            let la = service::organization::check(&state.profiles, &resource)?;
            db::run(&state.pool, move |conn| {
                service::organization::update(conn, &caller, &id, resource, la, version, now)
            })
            .await?
        }
        ResourceType::EpisodeOfCare => {
            let input = check_plan(&state, resource).await?;
            db::run(&state.pool, move |conn| {
                service::plan::update(conn, &caller, &id, &input, version, now)
            })
            .await?
        }
        ResourceType::Flag => return Err(not_allowed(ty, "update")),
    };
    written(&state, &req, w)
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "update-conditional", fhir.type, caller.role))]
pub async fn conditional_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    body: FhirBody,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    if ty != ResourceType::EpisodeOfCare {
        return Err(not_allowed(ty, "conditional update"));
    }
    caller.require(Action::WritePlan)?;
    let identifier = conditional_identifier(ty, req.query_string())?;
    let input = check_plan(&state, body.resource(ty.as_str())?).await?;
    let version = if_match(&req)?;
    let now = state.clock.now_ms();
    let w = db::run(&state.pool, move |conn| {
        service::plan::upsert(conn, &caller, &identifier, &input, version, now)
    })
    .await?;
    written(&state, &req, w)
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "delete", fhir.type, caller.role))]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    if ty != ResourceType::EpisodeOfCare {
        return Err(not_allowed(ty, "delete"));
    }
    let (_, id) = path.into_inner();
    let now = state.clock.now_ms();
    db::run(&state.pool, move |conn| {
        service::plan::delete(conn, &caller, &id, now)
    })
    .await?;
    Ok(FhirResponse::no_content())
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "delete-conditional", fhir.type, caller.role))]
pub async fn conditional_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    if ty != ResourceType::EpisodeOfCare {
        return Err(not_allowed(ty, "conditional delete"));
    }
    let identifier = conditional_identifier(ty, req.query_string())?;
    let now = state.clock.now_ms();
    db::run(&state.pool, move |conn| {
        service::plan::delete_by_identifier(conn, &caller, &identifier, now)
    })
    .await?;
    Ok(FhirResponse::no_content())
}

/// `POST /{type}/$validate` (optionally `?profile=<canonical>`): 200 with an OperationOutcome,
/// errors if invalid, one information issue if valid. Writes nothing.
#[tracing::instrument(skip_all, fields(fhir.interaction = "validate", fhir.type, caller.role))]
pub async fn validate(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    body: FhirBody,
) -> FhirResult<FhirResponse> {
    let ty = resource_type(&req)?;
    caller.require(Action::Validate)?;
    if ty == ResourceType::Flag {
        return Err(not_allowed(ty, "$validate"));
    }
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match name.as_ref() {
            "profile" if value == Profiles::canonical(ty.as_str()) => {}
            "profile" => {
                return Err(FhirError::InvalidSearch {
                    param: "profile".into(),
                    reason: format!("{value:?} is not this server's profile for {}", ty.as_str()),
                })
            }
            "_format" => {}
            _ => {
                return Err(FhirError::UnknownParameter {
                    param: name.into_owned(),
                })
            }
        }
    }
    let resource = body.resource(ty.as_str())?;
    let issues = match ty {
        ResourceType::Organization => {
            match service::organization::check(&state.profiles, &resource) {
                Ok(_) => vec![],
                Err(FhirError::Invalid(issues)) => issues,
                Err(other) => return Err(other),
            }
        }
        ResourceType::EpisodeOfCare => plan_issues(&state, &caller, resource).await?,
        ResourceType::Flag => return Err(not_allowed(ty, "$validate")),
    };
    if issues.is_empty() {
        Ok(FhirResponse::ok(information_outcome(
            "the resource is valid",
        )))
    } else {
        Ok(FhirResponse::ok(operation_outcome(&issues, "error")))
    }
}
