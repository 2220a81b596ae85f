//! The views' errors in the guides' shape (`NHS-COMPAT.md` §0): the native OperationOutcome
//! with the UK Core profile and the guides' diagnostics; `IsUnscheduledEvent` taken as an alias
//! of `IsUnscheduledAccessEvent`; and the answers to what the views do not serve.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, CONTENT_LENGTH};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::query::INVALID_NHS_NUMBER;
use crate::error::FhirError;
use crate::fhir::audit_event::CARE_SETTING_HEADER;

pub const UKCORE_OPERATION_OUTCOME: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/UKCore-OperationOutcome";
pub const ACCESS_DENIED: &str = "Access has been denied to process this request";
const BAD_HEADER: &str = "Missing or invalid header parameter";
/// The alias one page of the CP-IS guide uses for the care-setting header.
const CARE_SETTING_ALIAS: &str = "IsUnscheduledEvent";

/// The guides' diagnostics for an issue, where they have their own words for it.
fn guide_diagnostics(status: u16, issue: &Value) -> Option<&'static str> {
    let spine = issue
        .pointer("/details/coding/0/code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (status, spine, issue["code"].as_str().unwrap_or_default()) {
        (403, _, _) => Some(ACCESS_DENIED),
        (400, "PRECONDITION_FAILED", _) => Some(BAD_HEADER),
        // In the views every invalid search value is the NHS number (`query`).
        (400, "INVALID_SEARCH_DATA", "invalid") => Some(INVALID_NHS_NUMBER),
        _ => None,
    }
}

/// Rewrites an OperationOutcome body in the guides' shape.
pub fn nhs_outcome(status: u16, mut outcome: Value) -> Value {
    let Some(obj) = outcome
        .as_object_mut()
        .filter(|o| o.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome"))
    else {
        return outcome;
    };
    obj.insert(
        "meta".into(),
        json!({"profile": [UKCORE_OPERATION_OUTCOME]}),
    );
    if let Some(issues) = obj.get_mut("issue").and_then(Value::as_array_mut) {
        for issue in issues {
            if let (Some(text), Some(issue)) =
                (guide_diagnostics(status, issue), issue.as_object_mut())
            {
                issue.insert("diagnostics".into(), json!(text));
            }
        }
    }
    outcome
}

/// Middleware of both views: the header alias on the way in, the error shape on the way out.
pub async fn nhs_shaped(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Ok(native) = HeaderName::try_from(CARE_SETTING_HEADER) {
        if !req.headers().contains_key(&native) {
            if let Some(alias) = req.headers().get(CARE_SETTING_ALIAS).cloned() {
                req.headers_mut().insert(native, alias);
            }
        }
    }
    let res = next.call(req).await?;
    let status = res.status();
    if !status.is_client_error() && !status.is_server_error() {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (mut head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| actix_web::error::ErrorInternalServerError("unreadable error body"))?;
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(outcome) => {
            serde_json::to_vec(&nhs_outcome(status.as_u16(), outcome)).unwrap_or_default()
        }
        Err(_) => bytes.to_vec(),
    };
    head.headers_mut().remove(CONTENT_LENGTH);
    let res = head.set_body(BoxBody::new(body));
    Ok(ServiceResponse::new(req, res))
}

/// A path the view does not serve: a write (405), or anything else (404).
pub async fn not_served(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    if req.method() != Method::GET {
        return Err(method_not_allowed(&req));
    }
    crate::app::not_found(req).await
}

/// The views are read-only: every write is 405.
pub async fn read_only(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(method_not_allowed(&req))
}

fn method_not_allowed(req: &HttpRequest) -> FhirError {
    FhirError::MethodNotAllowed {
        ty: "this read-only view".into(),
        interaction: req.method().to_string(),
        allow: "GET, HEAD".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: &str, spine: &str) -> Value {
        json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": code,
            "details": {"coding": [{"system": crate::error::SPINE_SYSTEM, "code": spine}]},
            "diagnostics": "native words"
        }]})
    }

    #[test]
    fn errors_take_the_uk_core_profile_and_the_guides_words() {
        let denied = nhs_outcome(403, outcome("forbidden", "ACCESS_DENIED"));
        assert_eq!(denied["meta"]["profile"][0], UKCORE_OPERATION_OUTCOME);
        assert_eq!(denied["issue"][0]["diagnostics"], ACCESS_DENIED);
        let nhs = nhs_outcome(400, outcome("invalid", "INVALID_SEARCH_DATA"));
        assert_eq!(nhs["issue"][0]["diagnostics"], "Invalid NHS number");
        let header = nhs_outcome(400, outcome("invalid", "PRECONDITION_FAILED"));
        assert_eq!(header["issue"][0]["diagnostics"], BAD_HEADER);
        let unknown = nhs_outcome(400, outcome("not-supported", "INVALID_SEARCH_DATA"));
        assert_eq!(unknown["issue"][0]["diagnostics"], "native words");
    }
}
