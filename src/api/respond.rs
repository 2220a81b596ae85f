//! `FhirResponse`: a FHIR JSON body with ETag, Last-Modified and Location, honouring `Prefer`.

use actix_web::body::BoxBody;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, Responder};
use serde_json::Value;

use crate::db::models::ResourceRow;
use crate::error::information_outcome;
use crate::fhir::types::to_datetime;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// What the client asked to get back after a write (`Prefer: return=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

pub struct FhirResponse {
    status: StatusCode,
    body: Option<Value>,
    version: Option<(i64, i64)>,
    location: Option<String>,
}

impl FhirResponse {
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            version: None,
            location: None,
        }
    }

    /// A resource version: `ETag` and `Last-Modified` from its row.
    pub fn resource(status: StatusCode, row: &ResourceRow, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            version: Some((row.version_id, row.last_updated)),
            location: None,
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            version: None,
            location: None,
        }
    }

    pub fn with_location(mut self, url: String) -> Self {
        self.location = Some(url);
        self
    }

    /// Applies `Prefer: return=minimal|OperationOutcome` to a write's response.
    pub fn prefer(mut self, ret: Return) -> Self {
        match ret {
            Return::Representation => {}
            Return::Minimal => self.body = None,
            Return::OperationOutcome => {
                self.body = Some(information_outcome("the request was processed"))
            }
        }
        self
    }
}

/// An HTTP-date (RFC 7231) from epoch milliseconds.
pub fn http_date(ms: i64) -> String {
    to_datetime(ms)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

impl Responder for FhirResponse {
    type Body = BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some((version, last_updated)) = self.version {
            response.insert_header((header::ETAG, format!("W/\"{version}\"")));
            response.insert_header((header::LAST_MODIFIED, http_date(last_updated)));
        }
        if let Some(location) = self.location {
            response.insert_header((header::LOCATION, location.clone()));
            response.insert_header((header::CONTENT_LOCATION, location));
        }
        match self.body {
            Some(body) => response.content_type(FHIR_JSON).body(body.to_string()),
            None => response.finish(),
        }
    }
}
