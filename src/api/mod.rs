//! The HTTP API: the route table is `configure`, each stored type's routes in its module
//! (`organization`, `episode_of_care`, `flag`). Audited reads start from `read::Reading`, writes
//! from `write::Writing`. Handlers speak HTTP and call `service`; they never speak SQL.
//!
//! | Route (under `/FHIR/R4`)                   | Methods                       | Roles (SPEC §2)                    |
//! |--------------------------------------------|-------------------------------|------------------------------------|
//! | `/metadata`                                | GET                           | anyone (no token)                  |
//! | `/Organization`                            | GET search, POST create       | all read; operations writes        |
//! | `/Organization/{id}`                       | GET read, PUT update          | all read; operations, own LA telecom |
//! | `/EpisodeOfCare`                           | GET search, POST create, PUT/DELETE conditional | social-care writes own LA; health-care one NHS number; operations reads |
//! | `/EpisodeOfCare/{id}`                      | GET read, PUT update, DELETE  | as above                           |
//! | `/Flag`, `/Flag/{id}`                      | GET (writes are 405)          | as EpisodeOfCare reads             |
//! | `/{type}/{id}/_history[/{vid}]`            | GET history, vread            | as read                            |
//! | `/{type}/$validate`                        | POST                          | social-care, operations            |
//! | `/AuditEvent`                              | GET search (writes are 405)   | health-care one child; LA own children; operations all |
//! | `/AuditEvent/{id}`                         | GET read (writes are 405)     | LA own children; operations        |
//! | `/Subscription`, `/Subscription/{id}`      | GET, POST / GET, PUT, DELETE  | social-care own LA; operations reads |
//! | `` (the base)                              | POST transaction/batch Bundle | social-care, own plans             |
//! | `/Bundle`, `/Bundle/{id}`                  | GET upload reports            | social-care own LA; operations     |
//! | `/_health` (server root)                   | GET                           | anyone (no token)                  |

pub mod access;
pub mod episode_of_care;
pub mod extract;
pub mod flag;
pub mod health;
pub mod metadata;
pub mod negotiate;
pub mod organization;
pub mod read;
pub mod respond;
pub mod subscription;
pub mod upload;
pub mod write;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};

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
}

/// A route of a stored type (`/{type}{suffix}`): the handlers shared by the types learn which
/// one they serve from it (`resource_type`); a method it has no route for is 405.
fn stored_type(ty: ResourceType, suffix: &str) -> actix_web::Resource {
    web::resource(format!("/{}{suffix}", ty.as_str()))
        .app_data(ty)
        .default_service(web::to(method_not_allowed))
}

/// The history routes of a stored type (vread and instance history).
fn history_routes(cfg: &mut web::ServiceConfig, ty: ResourceType) {
    cfg.service(stored_type(ty, "/{id}/_history/{vid}").route(web::get().to(read::vread)))
        .service(stored_type(ty, "/{id}/_history").route(web::get().to(read::history_instance)));
}

/// `/{type}/{id}` of a stored type, with its read (a type adds its writes).
fn instance(ty: ResourceType) -> actix_web::Resource {
    stored_type(ty, "/{id}").route(web::get().to(read::read))
}

/// `/{type}` of a stored type, with its search (a type adds its writes).
fn type_level(ty: ResourceType) -> actix_web::Resource {
    stored_type(ty, "").route(web::get().to(read::search_type))
}

/// The stored type a route serves (set by `stored_type`).
pub fn resource_type(req: &HttpRequest) -> Result<ResourceType, FhirError> {
    let ty = req
        .app_data::<ResourceType>()
        .copied()
        .ok_or_else(|| FhirError::internal("a stored-type route without its type"))?;
    tracing::Span::current().record("fhir.type", ty.as_str());
    Ok(ty)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_health", web::get().to(health::health))
        .service(
            web::scope("/FHIR/R4")
                .wrap(actix_web::middleware::from_fn(negotiate::negotiate))
                .route("/metadata", web::get().to(metadata::capabilities))
                .service(
                    web::resource(["", "/"])
                        .route(web::post().to(upload::upload))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/Bundle")
                        .route(web::get().to(upload::search_reports))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/Bundle/{id}")
                        .route(web::get().to(upload::read_report))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/AuditEvent")
                        .route(web::get().to(access::search))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/AuditEvent/{id}")
                        .route(web::get().to(access::read))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/Subscription")
                        .route(web::get().to(subscription::search))
                        .route(web::post().to(subscription::create))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/Subscription/{id}")
                        .route(web::get().to(subscription::read))
                        .route(web::put().to(subscription::update))
                        .route(web::delete().to(subscription::delete))
                        .default_service(web::to(method_not_allowed)),
                )
                .configure(organization::routes)
                .configure(episode_of_care::routes)
                .configure(flag::routes)
                .default_service(web::to(not_found)),
        )
        .configure(crate::views::configure)
        .default_service(web::to(not_found));
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(FhirError::MethodNotAllowed {
        ty: req
            .app_data::<ResourceType>()
            .map_or("this endpoint", |ty| ty.as_str())
            .to_string(),
        interaction: req.method().to_string(),
    })
}

/// A path nothing serves: 404 (also the NHS views' fallback for GET).
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(FhirError::NotFound {
        ty: "endpoint".into(),
        id: req.path().trim_start_matches('/').to_string(),
    })
}
