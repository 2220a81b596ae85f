//! Logging and request ids. Logs never carry personal data: no NHS numbers, names, tokens or
//! bodies (the AuditEvent, not the log, records who saw whom).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber (once; later calls are no-ops). `RUST_LOG` filters.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const TRACE_ID: HeaderName = HeaderName::from_static("traceid");

fn usable(v: &HeaderValue) -> Option<HeaderValue> {
    let s = v.to_str().ok()?.trim();
    (!s.is_empty() && s.len() <= 200)
        .then(|| HeaderValue::from_str(s).ok())
        .flatten()
}

/// Every response carries `X-Request-ID`: the request's, else its `TraceID`, else a new UUID.
/// `X-Correlation-ID` and `TraceID` are echoed when sent.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let headers = req.headers();
    let trace = headers.get(&TRACE_ID).and_then(usable);
    let correlation = headers.get(&CORRELATION_ID).and_then(usable);
    let id = headers
        .get(&REQUEST_ID)
        .and_then(usable)
        .or_else(|| trace.clone())
        .or_else(|| HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok());
    let mut res = next.call(req).await?;
    let out = res.headers_mut();
    if let Some(id) = id {
        out.insert(REQUEST_ID, id);
    }
    if let Some(c) = correlation {
        out.insert(CORRELATION_ID, c);
    }
    if let Some(t) = trace {
        out.insert(TRACE_ID, t);
    }
    Ok(res)
}

/// The request span: method, route *pattern* and status only. The default span of
/// tracing-actix-web records the full target, and a query string here carries NHS numbers.
pub struct PrivacyRootSpan;

impl tracing_actix_web::RootSpanBuilder for PrivacyRootSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        tracing::info_span!(
            "request",
            http.method = %request.method(),
            http.route = %route,
            http.status_code = tracing::field::Empty,
            fhir.interaction = tracing::field::Empty,
            fhir.type = tracing::field::Empty,
            caller.role = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        if status.is_server_error() {
            tracing::warn!(parent: &span, http.status_code = status.as_u16(), "request failed");
        }
    }
}
