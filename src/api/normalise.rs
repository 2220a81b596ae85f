//! Requests FHIR lets a client make in more than one form, brought to one before routing, so
//! every handler, rule and audit sees one shape:
//!
//! - `HEAD` is answered as the `GET` it stands for: the same handler, the same headers and the
//!   same audit record; the HTTP layer sends no body (it knows the request was a HEAD).
//! - `POST [type]/_search` with a form body is the `GET [type]?…` search with the URL's and the
//!   body's parameters together (FHIR R4 RESTful API §3.1.0.9).
//! - A read or search's result parameters (`fhir::subset`) are parsed here, so an invalid one
//!   is 400 before anything is read or recorded; the `Shaping` is kept for `FhirResponse`.
//! - A search sent with `Prefer: handling=lenient` is the strict search without the parameters
//!   its type does not take; they are kept in `IgnoredParameters`, and the searchset says so in
//!   an OperationOutcome entry (`FhirResponse`). Without it, an unknown parameter is 400.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use crate::app::respond::IgnoredParameters;
use crate::app::AppState;
use crate::error::FhirError;
use crate::fhir::subset::Shaping;
use crate::search::params::{takes, Searched};

/// The FHIR base every native route is under.
const BASE: &str = "/FHIR/R4";
const FORM: &str = "application/x-www-form-urlencoded";

pub async fn normalise(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match rewrite(&mut req).await {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        // Answered here (not as an Err) so the outer middleware still adds X-Request-ID.
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
}

async fn rewrite(req: &mut ServiceRequest) -> Result<(), FhirError> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    if req.method() == Method::POST {
        rewrite_post(req).await?;
    }
    if req.method() == Method::GET && req.path().starts_with(BASE) {
        // Parsed once: `FhirResponse` shapes the answer with it.
        let shaping = Shaping::parse(req.query_string())?;
        req.extensions_mut().insert(shaping);
        if let Some(searched) = searched_type(req.path()).filter(|_| is_lenient(req)) {
            drop_unknown_parameters(req, searched)?;
        }
    }
    Ok(())
}

async fn rewrite_post(req: &mut ServiceRequest) -> Result<(), FhirError> {
    let path = req.path().to_string();
    if let Some(type_path) = search_target(&path) {
        let body = form_body(req).await?;
        let query = [req.query_string(), body.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        let uri: Uri = format!("{type_path}?{query}")
            .parse()
            .map_err(|_| FhirError::Unparseable("the _search form is not a valid query".into()))?;
        req.head_mut().method = Method::GET;
        set_uri(req, uri);
    }
    Ok(())
}

fn set_uri(req: &mut ServiceRequest, uri: Uri) {
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// The searched type of a `/FHIR/R4/{type}` path.
fn searched_type(path: &str) -> Option<Searched> {
    let ty = path.strip_prefix(BASE)?.strip_prefix('/')?;
    Searched::named(ty)
}

/// `Prefer: handling=lenient` (FHIR R4 search §3.1.1.3.1).
fn is_lenient(req: &ServiceRequest) -> bool {
    req.headers()
        .get_all("Prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|pref| pref.trim().eq_ignore_ascii_case("handling=lenient"))
}

/// Leaves out the parameters `searched` does not take, and keeps their names for the answer.
fn drop_unknown_parameters(req: &mut ServiceRequest, searched: Searched) -> Result<(), FhirError> {
    let (mut kept, mut ignored) = (Vec::new(), Vec::new());
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if name.trim().is_empty() || takes(searched, name.trim()) {
            kept.push((name, value));
        } else {
            ignored.push(name.to_string());
        }
    }
    if ignored.is_empty() {
        return Ok(());
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    let uri: Uri = format!("{}?{query}", req.path())
        .parse()
        .map_err(|_| FhirError::internal("a lenient search's query does not re-parse"))?;
    set_uri(req, uri);
    req.extensions_mut().insert(IgnoredParameters(ignored));
    Ok(())
}

/// `/FHIR/R4/{type}` of a `/FHIR/R4/{type}/_search` path.
fn search_target(path: &str) -> Option<&str> {
    let type_path = path.strip_suffix("/_search")?;
    let ty = type_path.strip_prefix(BASE)?.strip_prefix('/')?;
    is_type_name(ty).then_some(type_path)
}

/// A resource type's name: a capital, then letters.
fn is_type_name(segment: &str) -> bool {
    segment.starts_with(|c: char| c.is_ascii_uppercase())
        && segment.chars().all(|c| c.is_ascii_alphabetic())
}

/// A `_search` body: a form (FHIR requires `application/x-www-form-urlencoded`).
async fn form_body(req: &mut ServiceRequest) -> Result<String, FhirError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case(FORM) {
        return Err(FhirError::UnsupportedMediaType(format!(
            "a _search body must be {FORM}, not {content_type:?}"
        )));
    }
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(0, |state| state.max_body_bytes);
    let body = req.extract::<web::Bytes>().await.map_err(|e| {
        if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
            FhirError::TooLarge { limit }
        } else {
            FhirError::Unparseable("the _search form could not be read".into())
        }
    })?;
    String::from_utf8(body.to_vec())
        .map_err(|_| FhirError::Unparseable("the _search form is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_form_posts_to_a_types_search() {
        assert_eq!(
            search_target("/FHIR/R4/Flag/_search"),
            Some("/FHIR/R4/Flag")
        );
        assert_eq!(search_target("/FHIR/R4/_search"), None);
        assert_eq!(search_target("/FHIR/R4/Flag/abc/_search"), None);
        assert_eq!(search_target("/cpis/FHIR/R4/CareTeam/_search"), None);
    }
}
