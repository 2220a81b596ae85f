//! Content negotiation: FHIR R4 JSON only. `Accept` or `_format` asking for anything else, or
//! for another FHIR version (`fhirVersion=3.0`), is 406; a body declared as another FHIR
//! version is 415.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::FhirError;

/// Whether a media type's `fhirVersion` parameter, if any, names R4 (`4.0`, or `4.0.1`).
fn is_r4(media_type: &str) -> bool {
    media_type
        .split(';')
        .skip(1)
        .all(|param| match param.split_once('=') {
            Some((name, version)) if name.trim().eq_ignore_ascii_case("fhirVersion") => {
                let version = version.trim().trim_matches('"');
                version == "4.0" || version.starts_with("4.0.")
            }
            _ => true,
        })
}

fn acceptable(media_type: &str) -> bool {
    let mime = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    is_r4(media_type)
        && matches!(
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
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let refused = if accepts_json(accept, req.query_string()) {
        content_type.filter(|ct| !is_r4(ct)).map(|declared| {
            FhirError::UnsupportedMediaType(format!(
                "{declared:?}: this server takes FHIR R4 (fhirVersion=4.0)"
            ))
        })
    } else {
        Some(FhirError::NotAcceptable)
    };
    if let Some(error) = refused {
        // Answered here (not as an Err) so the outer middleware still adds X-Request-ID.
        let response = error.error_response();
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

    #[test]
    fn only_fhir_r4_is_acceptable() {
        assert!(accepts_json(
            Some("application/fhir+json; fhirVersion=4.0"),
            ""
        ));
        assert!(accepts_json(
            Some("application/fhir+json;fhirVersion=\"4.0.1\""),
            ""
        ));
        assert!(!accepts_json(
            Some("application/fhir+json; fhirVersion=3.0"),
            ""
        ));
        assert!(is_r4("application/fhir+json; charset=utf-8"));
        assert!(!is_r4("application/fhir+json; fhirVersion=5.0"));
    }
}
