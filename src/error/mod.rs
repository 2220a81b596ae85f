//! One error type for the whole server, mapped to a FHIR `OperationOutcome` in one place.
//!
//! | `FhirError`            | HTTP | issue.code        | Spine code                   |
//! |------------------------|------|-------------------|------------------------------|
//! | `Unauthenticated`      | 401  | login             | ACCESS_DENIED                |
//! | `Forbidden`            | 403  | forbidden         | ACCESS_DENIED                |
//! | `InvalidSearch`        | 400  | invalid           | INVALID_SEARCH_DATA          |
//! | `UnknownParameter`     | 400  | not-supported     | INVALID_SEARCH_DATA          |
//! | `BadHeader`            | 400  | invalid           | PRECONDITION_FAILED          |
//! | `Unparseable`          | 400  | structure         | VALIDATION_ERROR             |
//! | `Invalid(issues)`      | 422  | per issue         | per issue                    |
//! | `ForbiddenUpdate`      | 422  | business-rule     | FORBIDDEN_UPDATE             |
//! | `NotFound`             | 404  | not-found         | RESOURCE_NOT_FOUND           |
//! | `Gone`                 | 410  | deleted           | INVALIDATED_RESOURCE         |
//! | `MethodNotAllowed`     | 405  | not-supported     | UNSUPPORTED_SERVICE          |
//! | `NotAcceptable`        | 406  | not-supported     | UNSUPPORTED_SERVICE          |
//! | `UnsupportedMediaType` | 415  | not-supported     | UNSUPPORTED_SERVICE          |
//! | `VersionMismatch`      | 412  | conflict          | RESOURCE_VERSION_MISMATCH    |
//! | `MultipleMatches`      | 412  | multiple-matches  | TOO_MANY_MATCHES             |
//! | `Conflict`             | 409  | duplicate         | INVALID_VALUE                |
//! | `TooLarge`             | 413  | too-long          | FAILURE_TO_PROCESS_MESSAGE   |
//! | `Unavailable`          | 503  | transient         | UNABLE_TO_CALL_SERVICE       |
//! | `Internal`             | 500  | exception         | FAILURE_TO_PROCESS_MESSAGE   |
//!
//! `Conflict` uses `INVALID_VALUE` (not STYLE's `INVALID_UPDATE`) because SPEC §3 names it for a
//! duplicate plan identifier, and SPEC wins.
//!
//! The OperationOutcome it renders as is built in `outcome`; database failures become
//! `FhirError`s in `database`; a bad `CPIS_*` setting is a `ConfigError` (`config`).

mod config;
mod database;
mod outcome;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::Value;

pub use config::ConfigError;
pub use outcome::{
    fhir_string, information_outcome, operation_outcome, Issue, SpineCode, SPINE_SYSTEM,
};

/// The media type of every answer, an error's OperationOutcome included.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("invalid search parameter {param}: {reason}")]
    InvalidSearch { param: String, reason: String },
    #[error("unknown or unsupported search parameter {param}")]
    UnknownParameter { param: String },
    #[error("invalid header {header}: {reason}")]
    BadHeader { header: String, reason: String },
    #[error("request body could not be parsed: {0}")]
    Unparseable(String),
    #[error("resource is invalid ({} issues)", .0.len())]
    Invalid(Vec<Issue>),
    #[error("forbidden update: {reason}")]
    ForbiddenUpdate {
        expression: Option<String>,
        reason: String,
    },
    #[error("{ty}/{id} not found")]
    NotFound { ty: String, id: String },
    #[error("{ty}/{id} version {version} not found")]
    VersionNotFound {
        ty: String,
        id: String,
        version: String,
    },
    #[error("{ty}/{id} has been deleted")]
    Gone { ty: String, id: String },
    #[error("{interaction} is not allowed on {ty}")]
    MethodNotAllowed {
        ty: String,
        interaction: String,
        /// The methods the path serves (the `Allow` header).
        allow: String,
    },
    #[error("only application/fhir+json is supported")]
    NotAcceptable,
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("If-Match {expected} does not match current version {actual}")]
    VersionMismatch { expected: String, actual: i64 },
    #[error("{count} resources match the conditional request")]
    MultipleMatches { count: usize },
    #[error("conflict: {reason}")]
    Conflict {
        expression: Option<String>,
        reason: String,
    },
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// An entry of a transaction Bundle failed: its own status, its issues named by entry.
    #[error("Bundle entry failed ({status})")]
    InEntry { status: u16, issues: Vec<Issue> },
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

pub type FhirResult<T> = Result<T, FhirError>;

impl FhirError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        FhirError::Internal(anyhow::anyhow!("{e}"))
    }

    /// This error's row of the table above: its FHIR issue type and Spine code, and the
    /// element at fault when it names one.
    fn kind(&self) -> (&'static str, SpineCode, Option<String>) {
        use SpineCode as S;
        match self {
            FhirError::Unauthenticated(_) => ("login", S::AccessDenied, None),
            FhirError::Forbidden(_) => ("forbidden", S::AccessDenied, None),
            FhirError::InvalidSearch { param, .. } => {
                ("invalid", S::InvalidSearchData, Some(param.clone()))
            }
            FhirError::UnknownParameter { param } => {
                ("not-supported", S::InvalidSearchData, Some(param.clone()))
            }
            FhirError::BadHeader { .. } => ("invalid", S::PreconditionFailed, None),
            FhirError::Unparseable(_) => ("structure", S::ValidationError, None),
            FhirError::ForbiddenUpdate { expression, .. } => {
                ("business-rule", S::ForbiddenUpdate, expression.clone())
            }
            FhirError::NotFound { .. } | FhirError::VersionNotFound { .. } => {
                ("not-found", S::ResourceNotFound, None)
            }
            FhirError::Gone { .. } => ("deleted", S::InvalidatedResource, None),
            FhirError::MethodNotAllowed { .. }
            | FhirError::NotAcceptable
            | FhirError::UnsupportedMediaType(_) => ("not-supported", S::UnsupportedService, None),
            FhirError::VersionMismatch { .. } => ("conflict", S::ResourceVersionMismatch, None),
            FhirError::MultipleMatches { .. } => ("multiple-matches", S::TooManyMatches, None),
            FhirError::Conflict { expression, .. } => {
                ("duplicate", S::InvalidValue, expression.clone())
            }
            FhirError::TooLarge { .. } => ("too-long", S::FailureToProcessMessage, None),
            FhirError::Unavailable(_) => ("transient", S::UnableToCallService, None),
            FhirError::Internal(_) => ("exception", S::FailureToProcessMessage, None),
            // Carries its own issues (`issues`); the row is never read.
            FhirError::Invalid(_) | FhirError::InEntry { .. } => {
                ("invalid", S::ValidationError, None)
            }
        }
    }

    /// The issues this error renders as, in order.
    pub fn issues(&self) -> Vec<Issue> {
        let diagnostics = match self {
            FhirError::Invalid(issues) | FhirError::InEntry { issues, .. } => {
                return issues.clone()
            }
            // Never tell the client why: the cause is logged once, in `error_response`.
            FhirError::Unavailable(_) => "service temporarily unavailable; retry later".into(),
            FhirError::Internal(_) => "internal error".into(),
            _ => self.to_string(),
        };
        let (code, spine, expression) = self.kind();
        vec![Issue {
            code,
            spine,
            diagnostics,
            expression,
        }]
    }

    /// The OperationOutcome body for this error.
    pub fn to_operation_outcome(&self) -> Value {
        operation_outcome(&self.issues(), "error")
    }
}

impl ResponseError for FhirError {
    fn status_code(&self) -> StatusCode {
        match self {
            FhirError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            FhirError::Forbidden(_) => StatusCode::FORBIDDEN,
            FhirError::InvalidSearch { .. }
            | FhirError::UnknownParameter { .. }
            | FhirError::BadHeader { .. }
            | FhirError::Unparseable(_) => StatusCode::BAD_REQUEST,
            FhirError::Invalid(_) | FhirError::ForbiddenUpdate { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            FhirError::NotFound { .. } | FhirError::VersionNotFound { .. } => StatusCode::NOT_FOUND,
            FhirError::Gone { .. } => StatusCode::GONE,
            FhirError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            FhirError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            FhirError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FhirError::VersionMismatch { .. } | FhirError::MultipleMatches { .. } => {
                StatusCode::PRECONDITION_FAILED
            }
            FhirError::Conflict { .. } => StatusCode::CONFLICT,
            FhirError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            FhirError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            FhirError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            FhirError::InEntry { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            FhirError::Internal(cause) => {
                tracing::error!(error.cause = %format!("{cause:#}"), "internal error")
            }
            FhirError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "service unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(FHIR_JSON);
        match self {
            FhirError::Unauthenticated(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"cpis\""));
            }
            FhirError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            FhirError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            _ => {}
        }
        response.body(self.to_operation_outcome().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_issue_with_its_expression() {
        let err = FhirError::Invalid(vec![
            Issue::missing("EpisodeOfCare.period.start", "period.start is required"),
            Issue::not_allowed("EpisodeOfCare.reason", "reason is not allowed"),
        ]);
        let oo = err.to_operation_outcome();
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            oo["issue"][0]["expression"][0],
            "EpisodeOfCare.period.start"
        );
        assert_eq!(
            oo["issue"][0]["details"]["coding"][0]["code"],
            "MISSING_VALUE"
        );
        assert_eq!(oo["issue"][1]["code"], "structure");
        assert_eq!(
            oo["issue"][1]["details"]["coding"][0]["code"],
            "ADDITIONAL_PROPERTIES"
        );
    }

    #[test]
    fn internal_errors_never_leak_their_cause() {
        let err = FhirError::internal("secret table name");
        let body = err.to_operation_outcome().to_string();
        assert!(!body.contains("secret"));
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn each_variant_has_the_spec_status_and_spine_code() {
        let cases: Vec<(FhirError, u16, &str)> = vec![
            (FhirError::Unauthenticated("x".into()), 401, "ACCESS_DENIED"),
            (FhirError::Forbidden("x".into()), 403, "ACCESS_DENIED"),
            (
                FhirError::InvalidSearch {
                    param: "p".into(),
                    reason: "r".into(),
                },
                400,
                "INVALID_SEARCH_DATA",
            ),
            (
                FhirError::UnknownParameter { param: "p".into() },
                400,
                "INVALID_SEARCH_DATA",
            ),
            (
                FhirError::BadHeader {
                    header: "h".into(),
                    reason: "r".into(),
                },
                400,
                "PRECONDITION_FAILED",
            ),
            (
                FhirError::NotFound {
                    ty: "Flag".into(),
                    id: "1".into(),
                },
                404,
                "RESOURCE_NOT_FOUND",
            ),
            (
                FhirError::Gone {
                    ty: "Flag".into(),
                    id: "1".into(),
                },
                410,
                "INVALIDATED_RESOURCE",
            ),
            (
                FhirError::VersionMismatch {
                    expected: "1".into(),
                    actual: 2,
                },
                412,
                "RESOURCE_VERSION_MISMATCH",
            ),
            (
                FhirError::MultipleMatches { count: 2 },
                412,
                "TOO_MANY_MATCHES",
            ),
            (FhirError::NotAcceptable, 406, "UNSUPPORTED_SERVICE"),
            (
                FhirError::TooLarge { limit: 1 },
                413,
                "FAILURE_TO_PROCESS_MESSAGE",
            ),
            (
                FhirError::Unavailable("db".into()),
                503,
                "UNABLE_TO_CALL_SERVICE",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status_code().as_u16(), status, "{err}");
            assert_eq!(
                err.to_operation_outcome()["issue"][0]["details"]["coding"][0]["code"],
                code
            );
        }
    }
}
