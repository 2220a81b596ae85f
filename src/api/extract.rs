//! Request extractors: the FHIR JSON body, and the `If-Match`, `If-None-Exist` and `Prefer`
//! headers. Each failure is a `FhirError`, so it reaches the client as an OperationOutcome.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use crate::app::reading::header_str;
use crate::app::respond::Return;
use crate::error::FhirError;

/// A request body that is a JSON object, sent as `application/fhir+json` or `application/json`.
pub struct FhirBody(pub Value);

impl FhirBody {
    /// The body, provided its `resourceType` is `expected` (else 400).
    pub fn resource(self, expected: &str) -> Result<Value, FhirError> {
        match self.0.get("resourceType").and_then(Value::as_str) {
            Some(t) if t == expected => Ok(self.0),
            Some(t) => Err(FhirError::Unparseable(format!(
                "expected a {expected}, got resourceType {t:?}"
            ))),
            None => Err(FhirError::Unparseable("resourceType is missing".into())),
        }
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), FhirError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(FhirError::UnsupportedMediaType(
            "no Content-Type (use application/fhir+json)".into(),
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime == "application/fhir+json" || mime == "application/json" {
        Ok(())
    } else {
        Err(FhirError::UnsupportedMediaType(format!(
            "{mime:?}: use application/fhir+json"
        )))
    }
}

impl FromRequest for FhirBody {
    type Error = FhirError;
    type Future = LocalBoxFuture<'static, Result<FhirBody, FhirError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = check_content_type(req.headers());
        let limit = req
            .app_data::<web::Data<crate::app::AppState>>()
            .map_or(0, |s| s.max_body_bytes);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            checked?;
            let bytes = bytes
                .await
                .map_err(|e| match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => FhirError::TooLarge { limit },
                    _ => match e.as_response_error().status_code().as_u16() {
                        413 => FhirError::TooLarge { limit },
                        _ => FhirError::Unparseable(format!(
                            "the request body could not be read: {e}"
                        )),
                    },
                })?;
            let value = parse_json(bytes).await?;
            if !value.is_object() {
                return Err(FhirError::Unparseable(
                    "the body must be a JSON object (a FHIR resource)".into(),
                ));
            }
            Ok(FhirBody(value))
        })
    }
}

/// Bodies larger than this are parsed on the blocking pool: an LA's upload part (a megabyte or
/// more) parsed on an async worker held up every lookup that worker was serving.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

async fn parse_json(bytes: web::Bytes) -> Result<Value, FhirError> {
    let inline = bytes.len() <= PARSE_INLINE_BYTES;
    let parse = move || {
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| FhirError::Unparseable(format!("the body is not valid JSON: {e}")))
    };
    if inline {
        return parse();
    }
    web::block(parse)
        .await
        .map_err(|e| FhirError::Unavailable(format!("blocking pool: {e}")))?
}

/// `If-Match: W/"n"` (also `"n"` or `n`) as a version number.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, FhirError> {
    let Some(v) = header_str(req, "If-Match")? else {
        return Ok(None);
    };
    let bare = v.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>()
        .map(Some)
        .map_err(|_| FhirError::BadHeader {
            header: "If-Match".into(),
            reason: format!("{v:?} is not a version ETag such as W/\"1\""),
        })
}

/// `If-None-Exist: identifier=system|value`.
pub fn if_none_exist(req: &HttpRequest) -> Result<Option<String>, FhirError> {
    Ok(header_str(req, "If-None-Exist")?.map(|s| s.trim_start_matches('?').to_string()))
}

/// `Prefer: return=minimal|representation|OperationOutcome` (anything else: the default).
pub fn prefer(req: &HttpRequest) -> Return {
    let Ok(Some(value)) = header_str(req, "Prefer") else {
        return Return::default();
    };
    value
        .split([',', ';'])
        .filter_map(|part| part.trim().strip_prefix("return="))
        .map(|v| match v.trim_matches('"') {
            "minimal" => Return::Minimal,
            "OperationOutcome" => Return::OperationOutcome,
            _ => Return::Representation,
        })
        .next()
        .unwrap_or_default()
}
