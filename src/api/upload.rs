//! `POST /FHIR/R4`: LA uploads as transaction or batch Bundles (social-care, own plans only);
//! `GET /Bundle?type=batch-response`: the LA's data-quality reports (one per batch upload).

use actix_web::{web, HttpRequest};

use super::extract::FhirBody;
use crate::app::respond::FhirResponse;
use crate::app::{background, AppState};
use crate::auth::{Action, Caller, LaScope};
use crate::db;
use crate::db::reports::{self, ReportRow};
use crate::error::{FhirError, FhirResult};
use crate::fhir::bundle::SearchEntry;
use crate::search::page::searchset_page;
use crate::search::params::{ParamKind, Searched};
use crate::search::parse::{filter_params, ids_of, instant_bounds, Paging};
use crate::service::upload::{self, Kind};

/// `POST /FHIR/R4` with a transaction or batch Bundle.
#[tracing::instrument(skip_all, fields(fhir.interaction = "batch-transaction", caller.role))]
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    body: FhirBody,
) -> FhirResult<FhirResponse> {
    // Who may upload at all is decided before the body is looked at.
    caller.require(Action::WritePlan)?;
    let bundle = body.resource("Bundle")?;
    // Validating a part's entries takes tens of milliseconds of CPU: in the background, so the
    // async workers go on answering lookups, and lookups come first for the cores.
    let (profiles, max_entries) = (state.profiles.clone(), state.max_bundle_entries);
    let parsed = background::run("upload", move || {
        upload::parse(&profiles, bundle, max_entries)
    })
    .await??;
    let base = state.base_url.clone();
    let now = state.clock.now_ms();
    let entries = parsed.entries.len();
    let write = move |conn: &mut db::DbConn| {
        upload::execute(conn, &caller, &parsed, now, |conn, outcomes| {
            let rejected = outcomes
                .iter()
                .filter(|o| matches!(o, upload::Outcome::Failed(_)))
                .count();
            let response = upload::response_bundle(&base, parsed.kind, outcomes);
            let response = match parsed.kind {
                Kind::Batch => upload::keep_report(conn, &caller, response, outcomes, now)?,
                Kind::Transaction => response,
            };
            Ok((response, rejected))
        })
    };
    // On PostgreSQL, whose writers wait for no one, the writing is background work too. On
    // SQLite every write holds the one write turn the audit writer waits for: at normal
    // priority, so the turn is given back as soon as can be.
    let sqlite = db::run(&state.pool, |conn| Ok(db::is_sqlite(conn))).await?;
    let written = if !sqlite {
        let pool = state.pool.clone();
        background::run("upload", move || {
            let mut conn = pool.get()?;
            write(&mut conn)
        })
        .await?
    } else {
        db::run(&state.pool, write).await
    };
    match written {
        Ok((response, rejected)) => {
            state
                .metrics
                .observe_upload(entries.saturating_sub(rejected), rejected);
            Ok(FhirResponse::ok(response))
        }
        Err(e) => {
            // A transaction is all or nothing: every entry of a refused one is rejected.
            state.metrics.observe_upload(0, entries);
            Err(e)
        }
    }
}

/// Reports are the uploading LA's (and operations'); health-care has no business with them.
fn report_visible(caller: &Caller, row: &ReportRow) -> FhirResult<()> {
    caller.require(Action::ReadUploadReport)?;
    caller.la_scope().admit(&row.la_ods)
}

/// `GET /Bundle/{id}`: one report.
#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type = "Bundle"))]
pub async fn read_report(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> FhirResult<FhirResponse> {
    let id = path.into_inner();
    let row = db::run(&state.pool, move |conn| {
        caller.require(Action::ReadPlan)?;
        let row = reports::find(conn, &id)?.ok_or_else(|| FhirError::NotFound {
            ty: "Bundle".into(),
            id: id.clone(),
        })?;
        report_visible(&caller, &row)?;
        Ok(row)
    })
    .await?;
    let content = serde_json::from_str(&row.content).map_err(FhirError::internal)?;
    Ok(FhirResponse::ok(content))
}

/// `GET /Bundle?type=batch-response[&_lastUpdated=…]`: the caller's LA's reports, newest
/// first (operations: every LA's).
#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type = "Bundle"))]
pub async fn search_reports(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
) -> FhirResult<FhirResponse> {
    let mut paging = Paging::default();
    let (mut from, mut to) = (i64::MIN, i64::MAX);
    let mut ids: Option<Vec<String>> = None;
    let mut canonical = Vec::new();
    let query = req.query_string();
    for (def, name, value) in filter_params(Searched::Bundle, query, &mut paging)? {
        let invalid = |reason: &str| FhirError::InvalidSearch {
            param: name.clone(),
            reason: reason.into(),
        };
        match def.kind {
            ParamKind::LastUpdated => {
                let (f, t) = instant_bounds(&name, &value)?;
                from = from.max(f);
                to = to.min(t);
            }
            ParamKind::Id => ids = Some(ids_of(&value)),
            _ if value == "batch-response" => {}
            _ => return Err(invalid("the stored Bundles are batch-response reports")),
        }
        canonical.push((name, value));
    }
    let (rows, total) = db::run(&state.pool, move |conn| {
        caller.require(Action::ReadUploadReport)?;
        let la = match caller.la_scope() {
            LaScope::Every => None,
            LaScope::Own(ods) => Some(ods),
        };
        Ok(reports::search(
            conn,
            la.as_deref(),
            (from, to),
            ids.as_deref(),
            &paging,
        )?)
    })
    .await?;
    let entries = rows
        .iter()
        .map(|row| {
            Ok(SearchEntry {
                resource: serde_json::from_str(&row.content).map_err(FhirError::internal)?,
                mode: "match",
            })
        })
        .collect::<FhirResult<Vec<_>>>()?;
    Ok(FhirResponse::ok(searchset_page(
        &state.base_url,
        Searched::Bundle,
        &canonical,
        &paging,
        total,
        entries,
    )))
}
