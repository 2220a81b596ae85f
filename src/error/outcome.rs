//! The OperationOutcome and its parts: an `Issue` (the element at fault, its FHIR issue type
//! and Spine code) and the rendering every error and informational answer goes through.

use serde_json::{json, Value};

pub const SPINE_SYSTEM: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-SpineErrorOrWarningCode";

/// The UKCore-SpineErrorOrWarningCode values this server uses (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpineCode {
    AccessDenied,
    InvalidSearchData,
    PreconditionFailed,
    MissingValue,
    InvalidValue,
    AdditionalProperties,
    ValidationError,
    ResourceNotFound,
    InvalidatedResource,
    ResourceVersionMismatch,
    TooManyMatches,
    UnsupportedService,
    ForbiddenUpdate,
    UnableToCallService,
    FailureToProcessMessage,
}

impl SpineCode {
    pub fn code(self) -> &'static str {
        match self {
            Self::AccessDenied => "ACCESS_DENIED",
            Self::InvalidSearchData => "INVALID_SEARCH_DATA",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::MissingValue => "MISSING_VALUE",
            Self::InvalidValue => "INVALID_VALUE",
            Self::AdditionalProperties => "ADDITIONAL_PROPERTIES",
            Self::ValidationError => "VALIDATION_ERROR",
            Self::ResourceNotFound => "RESOURCE_NOT_FOUND",
            Self::InvalidatedResource => "INVALIDATED_RESOURCE",
            Self::ResourceVersionMismatch => "RESOURCE_VERSION_MISMATCH",
            Self::TooManyMatches => "TOO_MANY_MATCHES",
            Self::UnsupportedService => "UNSUPPORTED_SERVICE",
            Self::ForbiddenUpdate => "FORBIDDEN_UPDATE",
            Self::UnableToCallService => "UNABLE_TO_CALL_SERVICE",
            Self::FailureToProcessMessage => "FAILURE_TO_PROCESS_MESSAGE",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Self::AccessDenied => "Access has been denied to process this request",
            Self::InvalidSearchData => "Invalid search data",
            Self::PreconditionFailed => "Precondition failed",
            Self::MissingValue => "Required value is missing",
            Self::InvalidValue => "Provided value is invalid",
            Self::AdditionalProperties => "Additional properties are not allowed",
            Self::ValidationError => "A parameter or value has resulted in a validation error",
            Self::ResourceNotFound => "Resource not found",
            Self::InvalidatedResource => "Resource that has been marked as invalid was requested",
            Self::ResourceVersionMismatch => "Resource version mismatch",
            Self::TooManyMatches => "Too many matches",
            Self::UnsupportedService => "Unsupported service",
            Self::ForbiddenUpdate => "Forbidden update",
            Self::UnableToCallService => "Unable to call service",
            Self::FailureToProcessMessage => "Failed to process message",
        }
    }
}

/// One problem with a resource, pointing at the element at fault (FHIRPath).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// FHIR issue-type code: `required`, `value`, `structure`, `invariant`, …
    pub code: &'static str,
    pub spine: SpineCode,
    pub diagnostics: String,
    pub expression: Option<String>,
}

impl Issue {
    pub fn missing(expression: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        Self::at("required", SpineCode::MissingValue, expression, diagnostics)
    }
    pub fn invalid(expression: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        Self::at("value", SpineCode::InvalidValue, expression, diagnostics)
    }
    pub fn not_allowed(expression: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        Self::at(
            "structure",
            SpineCode::AdditionalProperties,
            expression,
            diagnostics,
        )
    }
    pub fn rule(expression: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        Self::at(
            "invariant",
            SpineCode::ValidationError,
            expression,
            diagnostics,
        )
    }
    pub fn at(
        code: &'static str,
        spine: SpineCode,
        expression: impl Into<String>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Self {
            code,
            spine,
            diagnostics: diagnostics.into(),
            expression: Some(expression.into()),
        }
    }
}

/// A FHIR `string` made of any text: not empty, and with no control character (other than
/// tab, CR, LF) or whitespace other than the space, which FHIR's `[ \r\n\t\S]+` excludes;
/// those are written as `\u{…}`. Diagnostics and expressions echo what the client sent, so
/// an OperationOutcome would otherwise break its own profile.
pub fn fhir_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let plain = matches!(c, ' ' | '\r' | '\n' | '\t');
        if !plain && (c.is_control() || c.is_whitespace() || c == '\u{feff}') {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if out.trim().is_empty() {
        out = "(none)".into();
    }
    out
}

/// Renders issues as an OperationOutcome resource.
pub fn operation_outcome(issues: &[Issue], severity: &str) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut issue = json!({
                "severity": severity,
                "code": i.code,
                "details": {"coding": [{
                    "system": SPINE_SYSTEM,
                    "code": i.spine.code(),
                    "display": i.spine.display(),
                }]},
                "diagnostics": fhir_string(&i.diagnostics),
            });
            if let (Some(expr), Some(obj)) = (&i.expression, issue.as_object_mut()) {
                obj.insert("expression".into(), json!([fhir_string(expr)]));
            }
            issue
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

/// The OperationOutcome for a successful `$validate` or an informational answer.
pub fn information_outcome(message: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": message}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_are_always_valid_fhir_strings() {
        assert_eq!(
            fhir_string("a\u{b}b\u{a0}c\td\u{feff}"),
            "a\\u{000b}b\\u{00a0}c\td\\u{feff}"
        );
        assert_eq!(fhir_string(""), "(none)");
        let oo = operation_outcome(
            &[Issue::invalid("EpisodeOfCare.\u{c}", "\u{2028}")],
            "error",
        );
        assert_eq!(oo["issue"][0]["expression"][0], "EpisodeOfCare.\\u{000c}");
        assert_eq!(oo["issue"][0]["diagnostics"], "\\u{2028}");
    }
}
