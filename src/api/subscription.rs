//! `/Subscription`: an LA's rest-hook registrations (SPEC §3), managed by that LA only.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use super::extract::{if_match, prefer, FhirBody};
use crate::app::respond::FhirResponse;
use crate::app::AppState;
use crate::auth::{Action, Caller};
use crate::db::subscriptions::SubscriptionFilter;
use crate::db::{self, subscriptions::SubscriptionRow};
use crate::error::{FhirError, FhirResult};
use crate::fhir::bundle::SearchEntry;
use crate::fhir::subscription::SubscriptionStatus;
use crate::search::page::searchset_page;
use crate::search::params::{ParamKind, Searched};
use crate::search::parse::{filter_params, ids_of, instant_bounds, Paging};
use crate::service::parse_content;
use crate::service::subscription::{self as service, as_resource_row, SubscriptionInput};

const TYPE: &str = "Subscription";

fn respond(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    row: &SubscriptionRow,
) -> FhirResult<FhirResponse> {
    let row = as_resource_row(row);
    let body = parse_content(&row)?;
    // Subscriptions keep no version history: the Location is the resource itself.
    let location = format!("{}/{TYPE}/{}", state.base_url, row.id);
    Ok(FhirResponse::resource(status, &row, body)
        .with_location(location)
        .prefer(prefer(req)))
}

fn input(state: &AppState, body: FhirBody) -> FhirResult<SubscriptionInput> {
    SubscriptionInput::check(&state.profiles, &state.endpoints, body.resource(TYPE)?)
}

/// `POST /Subscription` (social-care, for its own LA): `requested` becomes `active`.
#[tracing::instrument(skip_all, fields(fhir.interaction = "create", fhir.type = TYPE))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    body: FhirBody,
) -> FhirResult<FhirResponse> {
    caller.require(Action::ManageSubscription)?;
    let input = input(&state, body)?;
    let now = state.clock.now_ms();
    let row = db::run(&state.pool, move |conn| {
        service::create(conn, &caller, &input, now)
    })
    .await?;
    respond(&state, &req, StatusCode::CREATED, &row)
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type = TYPE))]
pub async fn read(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> FhirResult<FhirResponse> {
    let id = path.into_inner();
    let row = db::run(&state.pool, move |conn| service::read(conn, &caller, &id)).await?;
    let row = as_resource_row(&row);
    let body = parse_content(&row)?;
    Ok(FhirResponse::resource(StatusCode::OK, &row, body))
}

/// `PUT /Subscription/{id}` (its LA): e.g. `status: off` to stop deliveries.
#[tracing::instrument(skip_all, fields(fhir.interaction = "update", fhir.type = TYPE))]
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
    body: FhirBody,
) -> FhirResult<FhirResponse> {
    caller.require(Action::ManageSubscription)?;
    let id = path.into_inner();
    let input = input(&state, body)?;
    if let Some(body_id) = input.id() {
        if body_id != id {
            return Err(FhirError::Invalid(vec![crate::error::Issue::invalid(
                "Subscription.id",
                "the id in the body must match the id in the URL",
            )]));
        }
    }
    let expected = if_match(&req)?;
    let now = state.clock.now_ms();
    let row = db::run(&state.pool, move |conn| {
        service::update(conn, &caller, &id, &input, expected, now)
    })
    .await?;
    respond(&state, &req, StatusCode::OK, &row)
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "delete", fhir.type = TYPE))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> FhirResult<FhirResponse> {
    let id = path.into_inner();
    db::run(&state.pool, move |conn| service::delete(conn, &caller, &id)).await?;
    Ok(FhirResponse::no_content())
}

/// `GET /Subscription?status=&_lastUpdated=&_id=`: the caller's LA's own (operations: all).
#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type = TYPE))]
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
) -> FhirResult<FhirResponse> {
    let mut filter = SubscriptionFilter::default();
    let mut paging = Paging::default();
    let mut canonical = Vec::new();
    let query = req.query_string();
    for (def, name, value) in filter_params(Searched::Subscription, query, &mut paging)? {
        match def.kind {
            ParamKind::LastUpdated => {
                let (from, to) = instant_bounds(&name, &value)?;
                let (lo, hi) = filter.last_updated;
                filter.last_updated = (lo.max(from), hi.min(to));
            }
            ParamKind::Id => filter.ids = Some(ids_of(&value)),
            _ if SubscriptionStatus::from_code(&value).is_some() => {
                filter.status = Some(value.clone())
            }
            _ => {
                return Err(FhirError::InvalidSearch {
                    param: name,
                    reason: def.documentation.into(),
                })
            }
        }
        canonical.push((name, value));
    }
    let (rows, total) = db::run(&state.pool, move |conn| {
        service::search(conn, &caller, &filter, &paging)
    })
    .await?;
    let entries = rows
        .iter()
        .map(|row| {
            Ok(SearchEntry {
                resource: parse_content(&as_resource_row(row))?,
                mode: "match",
            })
        })
        .collect::<FhirResult<Vec<_>>>()?;
    Ok(FhirResponse::ok(searchset_page(
        &state.base_url,
        Searched::Subscription,
        &canonical,
        &paging,
        total,
        entries,
    )))
}
