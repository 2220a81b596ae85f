//! `/AuditEvent`: the access history (SPEC §3). Search and read only; AuditEvents are written
//! by the server alone and cannot be created, changed or deleted (405).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, Either, HttpRequest, HttpResponse};

use crate::app::negotiate;
use crate::app::reading::Reading;
use crate::app::respond::FhirResponse;
use crate::app::AppState;
use crate::auth::{Action, Caller};
use crate::db;
use crate::error::{FhirError, FhirResult};
use crate::fhir::audit_event::AccessKind;
use crate::fhir::bundle::SearchEntry;
use crate::report;
use crate::search::audit::{parse, AuditQuery};
use crate::search::page::searchset_page;
use crate::search::params::Searched;
use crate::service::access_history;

const TYPE: &str = "AuditEvent";

/// `GET /AuditEvent?patient:identifier=…`: for a child who has a plan, the search is itself an
/// access (`access_history::prepare`).
#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type = TYPE))]
pub async fn search(
    r: Reading,
    req: HttpRequest,
) -> FhirResult<Either<FhirResponse, HttpResponse>> {
    let query = parse(req.query_string())?;
    if negotiate::wants_csv(&req) {
        return report_csv(r, query).await.map(Either::Right);
    }
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
    Ok(Either::Left(FhirResponse::ok(searchset_page(
        &state.base_url,
        Searched::AuditEvent,
        &query.canonical,
        &query.paging,
        total,
        entries,
    ))))
}

/// A report as CSV (SPEC §2 `governance`): the whole report, oldest first, streamed a chunk at
/// a time (constant memory whatever its size). The report search is recorded first, exactly
/// as for JSON; paging parameters do not apply.
async fn report_csv(r: Reading, query: AuditQuery) -> FhirResult<HttpResponse> {
    if !r.caller().may(Action::ReadAccessReports) {
        return Err(FhirError::NotAcceptable);
    }
    let q = query.clone();
    let plan = r
        .disclose(AccessKind::Search, move |conn, ctx| {
            access_history::prepare(conn, ctx, &q)
        })
        .await?;
    let pool = r.state().pool.clone();
    let shared = Arc::new((plan, query));
    // (where to resume, whether the header is still to come); `None` once the report is done.
    let start = Some((None::<(i64, i64)>, true));
    let chunks = futures_util::stream::unfold(start, move |state| {
        let (pool, shared) = (pool.clone(), shared.clone());
        async move {
            let (after, header) = state?;
            let read = db::run(&pool, move |conn| {
                let (plan, q) = &*shared;
                plan.report_chunk(conn, q, after, report::CHUNK)
            })
            .await;
            let chunk = match read {
                Ok(chunk) => chunk,
                Err(e) => {
                    // The status has gone: end the body short, and say so in the log.
                    tracing::error!(error = %e, "an access report stopped part-way");
                    return Some((
                        Err(actix_web::error::ErrorServiceUnavailable("report")),
                        None,
                    ));
                }
            };
            if chunk.is_empty() && !header {
                return None;
            }
            // An empty report is its header alone; a chunk that is not full is the last.
            let full = i64::try_from(chunk.len()).unwrap_or(i64::MAX) == report::CHUNK;
            let next = report::resume_after(&chunk)
                .filter(|_| full)
                .map(|after| (Some(after), false));
            let bytes = report::csv_bytes(&chunk, header)
                .map(web::Bytes::from)
                .map_err(actix_web::error::ErrorInternalServerError);
            Some((bytes, next))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type(report::CSV_MEDIA_TYPE)
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"access-report.csv\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(chunks))
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
