//! `GET /FHIR/R4/metadata`: the CapabilityStatement. No token needed.

use actix_web::web;

use crate::app::respond::FhirResponse;
use crate::app::AppState;
use crate::search::capability::capability_statement;

pub async fn capabilities(state: web::Data<AppState>) -> FhirResponse {
    FhirResponse::ok(capability_statement(&state.base_url, state.cors))
}
