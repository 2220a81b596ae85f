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

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
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

    /// The issues this error renders as, in order.
    pub fn issues(&self) -> Vec<Issue> {
        use SpineCode as S;
        let one = |code: &'static str, spine: S, diagnostics: String, expr: Option<String>| {
            vec![Issue {
                code,
                spine,
                diagnostics,
                expression: expr,
            }]
        };
        match self {
            FhirError::Invalid(issues) | FhirError::InEntry { issues, .. } => issues.clone(),
            FhirError::Unauthenticated(_) => one("login", S::AccessDenied, self.to_string(), None),
            FhirError::Forbidden(_) => one("forbidden", S::AccessDenied, self.to_string(), None),
            FhirError::InvalidSearch { param, .. } => one(
                "invalid",
                S::InvalidSearchData,
                self.to_string(),
                Some(param.clone()),
            ),
            FhirError::UnknownParameter { param } => one(
                "not-supported",
                S::InvalidSearchData,
                self.to_string(),
                Some(param.clone()),
            ),
            FhirError::BadHeader { .. } => {
                one("invalid", S::PreconditionFailed, self.to_string(), None)
            }
            FhirError::Unparseable(_) => {
                one("structure", S::ValidationError, self.to_string(), None)
            }
            FhirError::ForbiddenUpdate { expression, .. } => one(
                "business-rule",
                S::ForbiddenUpdate,
                self.to_string(),
                expression.clone(),
            ),
            FhirError::NotFound { .. } | FhirError::VersionNotFound { .. } => {
                one("not-found", S::ResourceNotFound, self.to_string(), None)
            }
            FhirError::Gone { .. } => {
                one("deleted", S::InvalidatedResource, self.to_string(), None)
            }
            FhirError::MethodNotAllowed { .. }
            | FhirError::NotAcceptable
            | FhirError::UnsupportedMediaType(_) => one(
                "not-supported",
                S::UnsupportedService,
                self.to_string(),
                None,
            ),
            FhirError::VersionMismatch { .. } => one(
                "conflict",
                S::ResourceVersionMismatch,
                self.to_string(),
                None,
            ),
            FhirError::MultipleMatches { .. } => one(
                "multiple-matches",
                S::TooManyMatches,
                self.to_string(),
                None,
            ),
            FhirError::Conflict { expression, .. } => one(
                "duplicate",
                S::InvalidValue,
                self.to_string(),
                expression.clone(),
            ),
            FhirError::TooLarge { .. } => one(
                "too-long",
                S::FailureToProcessMessage,
                self.to_string(),
                None,
            ),
            // Never tell the client why: the cause is logged once, in `error_response`.
            FhirError::Unavailable(_) => one(
                "transient",
                S::UnableToCallService,
                "service temporarily unavailable; retry later".into(),
                None,
            ),
            FhirError::Internal(_) => one(
                "exception",
                S::FailureToProcessMessage,
                "internal error".into(),
                None,
            ),
        }
    }

    /// The OperationOutcome body for this error.
    pub fn to_operation_outcome(&self) -> Value {
        operation_outcome(&self.issues(), "error")
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
        response.content_type(crate::api::respond::FHIR_JSON);
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

impl From<r2d2::Error> for FhirError {
    fn from(e: r2d2::Error) -> Self {
        FhirError::Unavailable(format!("database pool: {e}"))
    }
}

/// Whether a database error is the load or outage of the moment (the client may try again)
/// rather than a fault: SQLite's `SQLITE_BUSY`/`SQLITE_LOCKED`, PostgreSQL's serialization
/// failures (40001), deadlocks (40P01), lock and statement timeouts (55P03, 57014), and a
/// server that went away (shut down, restarted, connection lost). libpq's SQLSTATE of all but
/// the first reaches diesel only as the message, which is matched.
fn is_contention(kind: &diesel::result::DatabaseErrorKind, message: &str) -> bool {
    use diesel::result::DatabaseErrorKind;
    const TRANSIENT: &[&str] = &[
        "database is locked",
        "database table is locked",
        "database schema is locked",
        "deadlock detected",
        "could not obtain lock",
        "lock timeout",
        "statement timeout",
        "could not serialize access",
        "terminating connection",
        "server closed the connection",
        "no connection to the server",
        "connection to server",
        "could not receive data from server",
        "could not send data to server",
        "SSL connection has been closed",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
    ];
    matches!(kind, DatabaseErrorKind::SerializationFailure)
        || TRANSIENT.iter().any(|t| message.contains(t))
}

impl From<diesel::result::Error> for FhirError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            // The database's own message names tables: keep it out of the client's answer.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => FhirError::Conflict {
                expression: None,
                reason: "a resource with this identifier already exists".into(),
            },
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                FhirError::Unavailable(format!("database connection closed: {}", info.message()))
            }
            Error::DatabaseError(kind, info) if is_contention(&kind, info.message()) => {
                FhirError::Unavailable(format!("database busy: {}", info.message()))
            }
            other => FhirError::internal(format!("database: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_contention_and_serialization_failures_are_503_with_retry_after() {
        use diesel::result::{DatabaseErrorKind, Error};
        let db = |kind, message: &str| -> FhirError {
            Error::DatabaseError(kind, Box::new(message.to_string())).into()
        };
        for busy in [
            db(DatabaseErrorKind::Unknown, "database is locked"),
            db(DatabaseErrorKind::Unknown, "database table is locked"),
            db(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access",
            ),
            db(DatabaseErrorKind::Unknown, "deadlock detected"),
            db(
                DatabaseErrorKind::Unknown,
                "canceling statement due to lock timeout",
            ),
        ] {
            assert_eq!(
                busy.status_code(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{busy}"
            );
            let response = busy.error_response();
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .map(|v| v.as_bytes()),
                Some(&b"5"[..])
            );
        }
        let fault = db(DatabaseErrorKind::Unknown, "no such table: resources");
        assert_eq!(fault.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

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
    fn diagnostics_are_always_valid_fhir_strings() {
        assert_eq!(
            fhir_string("a\u{b}b\u{a0}c\td\u{feff}"),
            "a\\u{000b}b\\u{00a0}c\td\\u{feff}"
        );
        assert_eq!(fhir_string(""), "(none)");
        let oo = FhirError::Invalid(vec![Issue::invalid("EpisodeOfCare.\u{c}", "\u{2028}")])
            .to_operation_outcome();
        assert_eq!(oo["issue"][0]["expression"][0], "EpisodeOfCare.\\u{000c}");
        assert_eq!(oo["issue"][0]["diagnostics"], "\\u{2028}");
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
