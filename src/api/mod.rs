//! The HTTP API: the whole route table is `configure`. Handlers speak HTTP and call `service`;
//! they never speak SQL.
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
pub mod extract;
pub mod health;
pub mod metadata;
pub mod negotiate;
pub mod resource;
pub mod respond;
pub mod subscription;
pub mod upload;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::audit::Auditor;
use crate::db::DbPool;
use crate::endpoints::EndpointPolicy;
use crate::error::FhirError;
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

/// Resource types with a REST endpoint; anything else under the base is 404.
const TYPES: &str = "{type:Organization|EpisodeOfCare|Flag}";

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
                .service(
                    web::resource(format!("/{TYPES}/$validate"))
                        .route(web::post().to(resource::validate))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource(format!("/{TYPES}/{{id}}/_history/{{vid}}"))
                        .route(web::get().to(resource::vread))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource(format!("/{TYPES}/{{id}}/_history"))
                        .route(web::get().to(resource::history_instance))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource(format!("/{TYPES}/{{id}}"))
                        .route(web::get().to(resource::read))
                        .route(web::put().to(resource::update))
                        .route(web::delete().to(resource::delete))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource(format!("/{TYPES}"))
                        .route(web::get().to(resource::search_type))
                        .route(web::post().to(resource::create))
                        .route(web::put().to(resource::conditional_update))
                        .route(web::delete().to(resource::conditional_delete))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(FhirError::MethodNotAllowed {
        ty: req
            .match_info()
            .get("type")
            .unwrap_or("this endpoint")
            .to_string(),
        interaction: req.method().to_string(),
    })
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(FhirError::NotFound {
        ty: "endpoint".into(),
        id: req.path().trim_start_matches('/').to_string(),
    })
}
