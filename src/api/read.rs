//! The audited reads: read, vread, instance history and search of the stored types
//! (`Organization`, `EpisodeOfCare`, `Flag`), and the `Reading` every audited read handler
//! starts from. A handler asks the service for a disclosure through `Reading::disclose`, which
//! hands back the data once the accesses it makes are committed (SPEC §3 AuditEvent).

use futures_util::future::LocalBoxFuture;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};

use super::extract::care_setting;
use super::respond::FhirResponse;
use super::{resource_type, AppState};
use crate::audit::{AccessContext, Disclosed, Reader};
use crate::auth::Caller;
use crate::db::DbConn;
use crate::error::{FhirError, FhirResult};
use crate::fhir::audit_event::{AccessKind, CareSetting};
use crate::fhir::{bundle, ResourceType};
use crate::search;
use crate::service;

/// An audited read about to be made: the application, the verified caller and the care
/// setting it reads from (`IsUnscheduledAccessEvent`).
pub struct Reading {
    state: web::Data<AppState>,
    caller: Caller,
    care_setting: CareSetting,
    ty: Option<ResourceType>,
}

impl FromRequest for Reading {
    type Error = FhirError;
    type Future = LocalBoxFuture<'static, Result<Reading, FhirError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = authenticated(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let (caller, state) = authenticated.await?;
            Ok(Reading {
                state,
                caller,
                care_setting: care_setting(&req)?,
                ty: resource_type(&req).ok(),
            })
        })
    }
}

/// The verified caller and the application state, for an extractor that needs both.
pub(crate) fn authenticated(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl std::future::Future<Output = FhirResult<(Caller, web::Data<AppState>)>> {
    let caller = Caller::from_request(req, payload);
    let state = web::Data::<AppState>::extract(req).into_inner();
    async move {
        let caller = caller.await?;
        let state = state.map_err(|_| FhirError::internal("no application state"))?;
        Ok((caller, state))
    }
}

impl Reading {
    /// The stored type the route serves.
    pub fn ty(&self) -> FhirResult<ResourceType> {
        self.ty
            .ok_or_else(|| FhirError::internal("a stored-type read on another route"))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Runs `read` on the pool as this caller, now, and hands over what it disclosed once the
    /// accesses it makes are committed: nothing is shown that was not recorded.
    pub async fn disclose<T, F>(&self, kind: AccessKind, read: F) -> FhirResult<T>
    where
        F: FnOnce(&mut DbConn, &AccessContext) -> FhirResult<Disclosed<T>> + Send + 'static,
        T: Send + 'static,
    {
        let reader = Reader {
            caller: self.caller.clone(),
            kind,
            care_setting: self.care_setting,
            now_ms: self.state.clock.now_ms(),
            observer: self.state.base_url.clone(),
        };
        self.state
            .auditor
            .disclosing(&self.state.pool, reader, read)
            .await
    }
}

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
    Ok(FhirResponse::ok(bundle::searchset_page(
        &r.state().base_url,
        search::params::Searched::Stored(ty),
        &parsed.canonical,
        &paging,
        results.total,
        results.entries,
    )))
}
