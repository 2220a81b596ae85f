//! `GET /FHIR/R4/metadata`: the CapabilityStatement. No token needed.

use actix_web::web;

use super::respond::FhirResponse;
use super::AppState;
use crate::fhir::capability::capability_statement;

pub async fn capabilities(state: web::Data<AppState>) -> FhirResponse {
    FhirResponse::ok(capability_statement(&state.base_url, state.cors))
}
