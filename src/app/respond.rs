//! `FhirResponse`: a FHIR JSON body with ETag, Last-Modified and Location, honouring `Prefer`.

use actix_web::body::BoxBody;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Responder};
use serde_json::{json, Value};

use crate::clock::to_datetime;
use crate::db::models::ResourceRow;
use crate::error::{information_outcome, FHIR_JSON};
use crate::fhir::subset::Shaping;

/// The parameters a lenient search left out, in the order given (set by the native API's
/// `normalise`, said in the searchset by `shape`).
#[derive(Debug, Clone)]
pub struct IgnoredParameters(pub Vec<String>);

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

/// An OperationOutcome entry saying which parameters a lenient search ignored.
fn ignored_outcome(ignored: &IgnoredParameters) -> Value {
    json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": ignored.0.iter().map(|name| json!({
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": format!("the search parameter {name} is not supported and was ignored (Prefer: handling=lenient)"),
                "expression": [name],
            })).collect::<Vec<_>>(),
        },
        "search": {"mode": "outcome"},
    })
}

/// A read or search's answer as the client shaped it: `_summary`, `_elements`, `_total`
/// (parsed by `normalise`), and the parameters a lenient search ignored.
fn shape(req: &HttpRequest, shaping: &Shaping, body: &mut Value) {
    shaping.apply(body);
    let is_searchset = body.get("type").and_then(Value::as_str) == Some("searchset");
    if let (true, Some(ignored)) = (is_searchset, req.extensions().get::<IgnoredParameters>()) {
        if let Some(bundle) = body.as_object_mut() {
            let entries = bundle.entry("entry").or_insert_with(|| json!([]));
            if let Some(entries) = entries.as_array_mut() {
                entries.push(ignored_outcome(ignored));
            }
        }
    }
}

impl Responder for FhirResponse {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some((version, last_updated)) = self.version {
            response.insert_header((header::ETAG, format!("W/\"{version}\"")));
            response.insert_header((header::LAST_MODIFIED, http_date(last_updated)));
        }
        if let Some(location) = self.location {
            response.insert_header((header::LOCATION, location.clone()));
            response.insert_header((header::CONTENT_LOCATION, location));
        }
        let Some(mut body) = self.body else {
            return response.finish();
        };
        // Parsed (and checked) by `normalise`; absent outside the native base.
        let shaping = req
            .extensions()
            .get::<Shaping>()
            .cloned()
            .unwrap_or_default();
        if req.method() == Method::GET && self.status == StatusCode::OK {
            shape(req, &shaping, &mut body);
        }
        crate::fhir::json::prune_empty(&mut body);
        let text = if shaping.pretty {
            serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
        } else {
            body.to_string()
        };
        response.content_type(FHIR_JSON).body(text)
    }
}
