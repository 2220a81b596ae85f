//! The audited reads: read, vread, instance history and search of the stored types
//! (`Organization`, `EpisodeOfCare`, `Flag`), each from a `Reading` (`app::reading`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};

use crate::app::reading::Reading;
use crate::app::respond::FhirResponse;
use crate::error::{FhirError, FhirResult};
use crate::fhir::audit_event::AccessKind;
use crate::fhir::bundle;
use crate::search;
use crate::service;

#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type))]
pub async fn read(r: Reading, id: web::Path<String>) -> FhirResult<FhirResponse> {
    let ty = r.ty()?;
    let (row, content) = r
        .disclose(AccessKind::Read, move |conn, ctx| {
            service::read::read(conn, ctx, ty, &id)
        })
        .await?;
    Ok(FhirResponse::resource(StatusCode::OK, &row, content))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "vread", fhir.type))]
pub async fn vread(r: Reading, path: web::Path<(String, String)>) -> FhirResult<FhirResponse> {
    let ty = r.ty()?;
    let (id, vid) = path.into_inner();
    let version: i64 = vid.parse().map_err(|_| FhirError::VersionNotFound {
        ty: ty.as_str().into(),
        id: id.clone(),
        version: vid.clone(),
    })?;
    let (row, content) = r
        .disclose(AccessKind::VRead, move |conn, ctx| {
            service::read::vread(conn, ctx, ty, &id, version)
        })
        .await?;
    Ok(FhirResponse::resource(StatusCode::OK, &row, content))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "history-instance", fhir.type))]
pub async fn history_instance(r: Reading, id: web::Path<String>) -> FhirResult<FhirResponse> {
    let ty = r.ty()?;
    let id = id.into_inner();
    let history_id = id.clone();
    let versions = r
        .disclose(AccessKind::History, move |conn, ctx| {
            service::read::history(conn, ctx, ty, &history_id)
        })
        .await?;
    let versions = versions
        .into_iter()
        .map(|(row, resource)| bundle::Version {
            version_id: row.version_id,
            last_updated: row.last_updated,
            resource,
        })
        .collect();
    let base = &r.state().base_url;
    Ok(FhirResponse::ok(bundle::history(
        base,
        ty.as_str(),
        &id,
        versions,
    )))
}

#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type))]
pub async fn search_type(r: Reading, req: HttpRequest) -> FhirResult<FhirResponse> {
    let ty = r.ty()?;
    let parsed = search::parse(ty, req.query_string())?;
    let request = parsed.clone();
    let results = r
        .disclose(AccessKind::Search, move |conn, ctx| {
            service::search::search(conn, ctx, &request)
        })
        .await?;
    let paging = search::parse::Paging {
        count: parsed.count,
        offset: parsed.offset,
        sort: parsed.sort,
    };
    Ok(FhirResponse::ok(search::page::searchset_page(
        &r.state().base_url,
        search::params::Searched::Stored(ty),
        &parsed.canonical,
        &paging,
        results.total,
        results.entries,
    )))
}
