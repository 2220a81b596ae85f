//! Cross-origin calls from browser apps (`CPIS_CORS_ORIGINS`): only the origins named, with the
//! request headers a FHIR client sends and the response headers it reads. Unset, no CORS header
//! is ever sent and browsers on other origins cannot call.

use actix_cors::Cors;
use actix_web::http::header;

/// Request headers a browser app may send besides the CORS-safelisted ones.
const ALLOWED_HEADERS: &[&str] = &[
    "Authorization",
    "Content-Type",
    "Accept",
    "If-Match",
    "If-None-Exist",
    "Prefer",
    "IsUnscheduledAccessEvent",
    // The alias one page of the CP-IS guide uses, which the NHS views accept (`views::outcome`).
    "IsUnscheduledEvent",
    "X-Request-ID",
    "X-Correlation-ID",
    "TraceID",
];

/// Response headers a browser app may read besides the CORS-safelisted ones.
const EXPOSED_HEADERS: &[header::HeaderName] = &[
    header::ETAG,
    header::LOCATION,
    header::CONTENT_LOCATION,
    header::LAST_MODIFIED,
    header::ALLOW,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
];

/// The CORS layer for `origins` (none: the layer is not installed at all).
pub fn layer(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "DELETE"])
        .allowed_headers(ALLOWED_HEADERS.iter().copied())
        .expose_headers(EXPOSED_HEADERS.iter().cloned().chain(
            ["x-request-id", "x-correlation-id", "traceid"].map(header::HeaderName::from_static),
        ))
        .max_age(3600);
    origins
        .iter()
        .fold(cors, |cors, origin| cors.allowed_origin(origin))
}
