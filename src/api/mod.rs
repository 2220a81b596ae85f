//! The HTTP API: the route table is `configure`, each stored type's routes in its module
//! (`organization`, `episode_of_care`, `flag`). Audited reads start from `app::reading::Reading`,
//! writes from `write::Writing`. Handlers speak HTTP and call `service`; they never speak SQL.
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
//! | `/{type}/_search`                          | POST (a form: the GET search, see `normalise`) | as the search     |
//! | `/_history`, `/{type}/_history`            | none (405, empty `Allow`)     | nobody                             |
//! | `/{type}/$validate`                        | POST                          | social-care, operations            |
//! | `/AuditEvent`                              | GET search (writes are 405)   | health-care one child; LA own children; operations all |
//! | `/AuditEvent/{id}`                         | GET read (writes are 405)     | LA own children; operations        |
//! | `/Subscription`, `/Subscription/{id}`      | GET, POST / GET, PUT, DELETE  | social-care own LA; operations reads |
//! | `` (the base)                              | POST transaction/batch Bundle | social-care, own plans             |
//! | `/Bundle`, `/Bundle/{id}`                  | GET upload reports            | social-care own LA; operations     |
//! | `/_health` (server root)                   | GET (liveness)                | anyone (no token)                  |
//! | `/_ready` (server root)                    | GET (readiness)               | anyone (no token)                  |
//! | `/metrics` (server root)                   | GET (Prometheus text)         | operations (and, on `CPIS_METRICS_BIND`, anyone) |
//!
//! Every path answers `HEAD` where it answers `GET`, and a method it does not serve with 405
//! and `Allow` (`app::Endpoint`).

pub mod access;
pub mod cors;
pub mod episode_of_care;
pub mod extract;
pub mod flag;
pub mod health;
pub mod metadata;
pub mod metrics;
pub mod normalise;
pub mod organization;
pub mod read;
pub mod subscription;
pub mod upload;
pub mod write;

use actix_web::{web, HttpResponse};

use crate::app::negotiate;
use crate::app::{not_found, Endpoint};
use crate::error::FhirError;
use crate::fhir::ResourceType;

/// A type's routes under `/{type}`, in a scope of their own: a request is matched against its
/// type's few routes only. actix matches each pattern with a variable (`/{id}`) by a regular
/// expression, and in one flat table a request tried every type's in turn, three times (routing,
/// the request span's and the metrics' route label): a tenth of a plain read's CPU.
fn type_scope(name: &str, routes: impl FnOnce(&mut web::ServiceConfig)) -> actix_web::Scope {
    web::scope(&format!("/{name}")).configure(routes)
}

/// A route of a stored type (`{suffix}` in its `type_scope`): the handlers shared by the types
/// learn which one they serve from it (`resource_type`); a method it has no route for is 405.
fn stored_type(ty: ResourceType, suffix: &str) -> Endpoint {
    Endpoint::new(suffix).app_data(ty)
}

/// The fixed type-level paths `/{id}` would otherwise take for an id: `_history` (not offered:
/// 405) and `_search`.
fn fixed_type_paths(cfg: &mut web::ServiceConfig, ty: ResourceType) {
    cfg.service(search_form())
        .service(stored_type(ty, "/_history").build());
}

/// The history routes of a stored type's instances (vread and instance history).
fn instance_history(cfg: &mut web::ServiceConfig, ty: ResourceType) {
    cfg.service(
        stored_type(ty, "/{id}/_history/{vid}")
            .get(read::vread)
            .build(),
    )
    .service(
        stored_type(ty, "/{id}/_history")
            .get(read::history_instance)
            .build(),
    );
}

/// `POST /{type}/_search` (in the type's scope): `normalise` turns it into the type's GET
/// search before routing, so its handler is never reached; the path is declared so its other
/// methods are 405 with `Allow: POST`.
fn search_form() -> actix_web::Resource {
    Endpoint::new("/_search")
        .post(rewritten_before_routing)
        .build()
}

async fn rewritten_before_routing() -> Result<HttpResponse, FhirError> {
    Err(FhirError::internal(
        "a _search form reached routing unrewritten",
    ))
}

/// `/{type}/{id}` of a stored type, with its read (a type adds its writes).
fn instance(ty: ResourceType) -> Endpoint {
    stored_type(ty, "/{id}").get(read::read)
}

/// `/{type}` of a stored type, with its search (a type adds its writes).
fn type_level(ty: ResourceType) -> Endpoint {
    stored_type(ty, "").get(read::search_type)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/_health").get(health::health).build())
        .service(Endpoint::new("/_ready").get(health::ready).build())
        .service(Endpoint::new("/metrics").get(metrics::scrape).build())
        .service(
            web::scope("/FHIR/R4")
                .wrap(actix_web::middleware::from_fn(negotiate::negotiate))
                .service(
                    Endpoint::new("/metadata")
                        .get(metadata::capabilities)
                        .build(),
                )
                .service(Endpoint::new("").create(upload::upload).build())
                .service(Endpoint::new("/").create(upload::upload).build())
                // The system-level history is not offered.
                .service(Endpoint::new("/_history").build())
                .service(type_scope("Bundle", |cfg| {
                    cfg.service(Endpoint::new("").get(upload::search_reports).build())
                        .service(search_form())
                        .service(Endpoint::new("/_history").build())
                        .service(Endpoint::new("/{id}").get(upload::read_report).build());
                }))
                .service(type_scope("AuditEvent", |cfg| {
                    cfg.service(Endpoint::new("").get(access::search).build())
                        .service(search_form())
                        .service(Endpoint::new("/_history").build())
                        .service(Endpoint::new("/{id}").get(access::read).build());
                }))
                .service(type_scope("Subscription", |cfg| {
                    cfg.service(
                        Endpoint::new("")
                            .get(subscription::search)
                            .create(subscription::create)
                            .build(),
                    )
                    .service(search_form())
                    .service(Endpoint::new("/_history").build())
                    .service(
                        Endpoint::new("/{id}")
                            .get(subscription::read)
                            .put(subscription::update)
                            .delete(subscription::delete)
                            .build(),
                    );
                }))
                .service(type_scope(
                    ResourceType::Organization.as_str(),
                    organization::routes,
                ))
                .service(type_scope(
                    ResourceType::EpisodeOfCare.as_str(),
                    episode_of_care::routes,
                ))
                .service(type_scope(ResourceType::Flag.as_str(), flag::routes))
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}
