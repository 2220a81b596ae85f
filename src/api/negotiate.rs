//! Content negotiation: JSON only. `Accept` or `_format` asking for anything else is 406.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::FhirError;

fn acceptable(mime: &str) -> bool {
    let mime = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "" | "*/*"
            | "application/*"
            | "application/fhir+json"
            | "application/json"
            | "json"
            | "application/json+fhir"
    )
}

/// Whether a request's `Accept` header and `_format` parameter allow a JSON answer.
pub fn accepts_json(accept: Option<&str>, query: &str) -> bool {
    let accept_ok = accept.is_none_or(|a| a.split(',').any(acceptable));
    let format_ok = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "_format")
        .all(|(_, v)| acceptable(&v));
    accept_ok && format_ok
}

pub async fn negotiate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if !accepts_json(accept, req.query_string()) {
        // Answered here (not as an Err) so the outer middleware still adds X-Request-ID.
        let response = FhirError::NotAcceptable.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_flavours_are_acceptable_and_xml_is_not() {
        assert!(accepts_json(None, ""));
        assert!(accepts_json(Some("application/fhir+json"), "_format=json"));
        assert!(accepts_json(Some("text/html, */*;q=0.8"), ""));
        assert!(!accepts_json(Some("application/fhir+xml"), ""));
        assert!(!accepts_json(None, "_format=xml"));
    }
}
