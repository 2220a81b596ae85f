//! `/AuditEvent`: the access history (SPEC §3). Search and read only; AuditEvents are written
//! by the server alone and cannot be created, changed or deleted (405).

use actix_web::{web, HttpRequest};

use super::read::Reading;
use super::respond::FhirResponse;
use super::AppState;
use crate::auth::Caller;
use crate::db;
use crate::error::FhirResult;
use crate::fhir::audit_event::AccessKind;
use crate::fhir::bundle::{self, SearchEntry};
use crate::search::audit::parse;
use crate::search::params::Searched;
use crate::service::access_history;

const TYPE: &str = "AuditEvent";

/// `GET /AuditEvent?patient:identifier=…`: for a child who has a plan, the search is itself an
/// access (`access_history::prepare`).
#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type = TYPE))]
pub async fn search(r: Reading, req: HttpRequest) -> FhirResult<FhirResponse> {
    let query = parse(req.query_string())?;
    let q = query.clone();
    // Recorded before the page is read, so the history includes this search.
    let plan = r
        .disclose(AccessKind::Search, move |conn, ctx| {
            access_history::prepare(conn, ctx, &q)
        })
        .await?;
    let state = r.state();
    let q = query.clone();
    let (events, total) = db::run(&state.pool, move |conn| {
        access_history::page(conn, &plan, &q)
    })
    .await?;
    let entries = events
        .into_iter()
        .map(|resource| SearchEntry {
            resource,
            mode: "match",
        })
        .collect();
    Ok(FhirResponse::ok(bundle::searchset_page(
        &state.base_url,
        Searched::AuditEvent,
        &query.canonical,
        &query.paging,
        total,
        entries,
    )))
}

/// `GET /AuditEvent/{id}`.
#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type = TYPE))]
pub async fn read(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> FhirResult<FhirResponse> {
    let id = path.into_inner();
    let event = db::run(&state.pool, move |conn| {
        access_history::read(conn, &caller, &id)
    })
    .await?;
    Ok(FhirResponse::ok(event))
}
