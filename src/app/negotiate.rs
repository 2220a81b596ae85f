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

/// Whether a media type (or `_format` value) names CSV.
fn is_csv(media_type: &str) -> bool {
    let mime = media_type.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("text/csv") || mime.eq_ignore_ascii_case("csv")
}

/// Whether a path is the AuditEvent search, the one answer with a CSV form (the governance
/// reports, SPEC §2).
fn has_csv_form(path: &str) -> bool {
    path.strip_suffix("/_search").unwrap_or(path) == "/FHIR/R4/AuditEvent"
}

/// Whether a request asks for CSV: `_format=csv` (or `text/csv`), or an `Accept` header that
/// names `text/csv` and no JSON.
pub fn asks_for_csv(accept: Option<&str>, query: &str) -> bool {
    let format = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "_format")
        .map(|(_, v)| v.into_owned())
        .last();
    match format {
        Some(format) => is_csv(&format),
        // CSV asked for by name, and no JSON type named beside it.
        None => accept.is_some_and(|a| {
            let named_json = |m: &str| {
                let m = m.trim();
                acceptable(m)
                    && !m.is_empty()
                    && !m.starts_with("*/*")
                    && !m.starts_with("application/*")
            };
            a.split(',').any(is_csv) && !a.split(',').any(named_json)
        }),
    }
}

/// Whether this request is for a report as CSV.
pub fn wants_csv(req: &actix_web::HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    has_csv_form(req.path()) && asks_for_csv(accept, req.query_string())
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
    let csv = has_csv_form(req.path()) && asks_for_csv(accept, req.query_string());
    let refused = if csv || accepts_json(accept, req.query_string()) {
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
    fn csv_is_asked_for_by_format_or_by_an_accept_that_names_no_json() {
        assert!(asks_for_csv(None, "_format=csv"));
        assert!(asks_for_csv(None, "_format=text/csv"));
        assert!(asks_for_csv(Some("text/csv"), ""));
        assert!(asks_for_csv(Some("text/csv, */*;q=0.1"), ""));
        assert!(!asks_for_csv(Some("application/fhir+json, text/csv"), ""));
        assert!(!asks_for_csv(Some("text/csv"), "_format=json"));
        assert!(!asks_for_csv(None, ""));
        assert!(has_csv_form("/FHIR/R4/AuditEvent"));
        assert!(has_csv_form("/FHIR/R4/AuditEvent/_search"));
        assert!(!has_csv_form("/cpis/FHIR/R4/AuditEvent"));
        assert!(!has_csv_form("/FHIR/R4/Flag"));
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
