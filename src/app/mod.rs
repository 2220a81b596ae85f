//! What every HTTP face of the server shares: the native API (`api`), NHS England's views
//! (`views`) and the viewer are each mounted by `startup` and built on this room, never on one
//! another. `AppState` is what every handler may use; `Endpoint` declares a path with its
//! methods; `reading::Reading` starts every audited read; `respond::FhirResponse` shapes an
//! answer; `negotiate` checks the formats a client asks for.

pub mod background;
pub mod endpoint;
pub mod negotiate;
pub mod reading;
pub mod respond;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse};

pub use endpoint::Endpoint;

use crate::audit::Auditor;
use crate::db::DbPool;
use crate::endpoints::EndpointPolicy;
use crate::error::FhirError;
use crate::fhir::ResourceType;
use crate::validation::Profiles;

/// What every handler may use.
pub struct AppState {
    pub pool: DbPool,
    /// Absolute base for `fullUrl`s and links, e.g. `http://127.0.0.1:8080/FHIR/R4`.
    pub base_url: String,
    pub profiles: Arc<Profiles>,
    pub max_body_bytes: usize,
    /// Records accesses (AuditEvents) before responses are sent.
    pub auditor: Auditor,
    /// Where Subscription endpoints may point.
    pub endpoints: Arc<EndpointPolicy>,
    /// The most entries an upload Bundle may hold.
    pub max_bundle_entries: usize,
    /// Now, for every date rule and timestamp (a test sets it).
    pub clock: crate::clock::Clock,
    /// Whether browsers on other origins may call (`CPIS_CORS_ORIGINS`).
    pub cors: bool,
    /// What `GET /metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Starting, ready or stopping (`GET /_ready`).
    pub readiness: crate::lifecycle::Readiness,
    /// The scheduled backups' last good one and last failure (`GET /_ready`), when
    /// `CPIS_BACKUP_DIR` schedules them.
    pub backups: Option<Arc<crate::backup::BackupStatus>>,
}

/// The stored type a route serves (the native API sets it on each stored type's routes).
pub fn resource_type(req: &HttpRequest) -> Result<ResourceType, FhirError> {
    let ty = req
        .app_data::<ResourceType>()
        .copied()
        .ok_or_else(|| FhirError::internal("a stored-type route without its type"))?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    Ok(ty)
}

/// A path nothing serves: 404 (also the NHS views' fallback for GET).
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(FhirError::NotFound {
        ty: "endpoint".into(),
        id: req.path().trim_start_matches('/').to_string(),
    })
}
