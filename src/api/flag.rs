//! `/Flag`: the alert on a child with a plan (SPEC §3 Flag). Read-only: the server writes each
//! Flag with its plan, so every write, and `$validate`, is 405.

use actix_web::web;

use super::{history_routes, instance, stored_type, type_level};
use crate::fhir::ResourceType;

const TYPE: ResourceType = ResourceType::Flag;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `$validate` before `/{id}`, which would take it for an id.
    cfg.service(stored_type(TYPE, "/$validate").build());
    history_routes(cfg, TYPE);
    cfg.service(instance(TYPE).build())
        .service(type_level(TYPE).build());
}
