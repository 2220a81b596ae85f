//! `/Flag`: the alert on a child with a plan (SPEC §3 Flag). Read-only: the server writes each
//! Flag with its plan, so every write, and `$validate`, is 405.

use actix_web::web;

use super::{fixed_type_paths, instance, instance_history, stored_type, type_level};
use crate::fhir::ResourceType;

const TYPE: ResourceType = ResourceType::Flag;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The search first (no pattern to match), the fixed paths before `/{id}`, which would
    // take them for an id.
    cfg.service(type_level(TYPE).build())
        .service(stored_type(TYPE, "/$validate").build());
    fixed_type_paths(cfg, TYPE);
    cfg.service(instance(TYPE).build());
    instance_history(cfg, TYPE);
}
