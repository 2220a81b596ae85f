//! Logging and request ids. Logs never carry personal data: no NHS numbers, names, tokens or
//! bodies (the AuditEvent, not the log, records who saw whom).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing_subscriber::{fmt, EnvFilter};

use crate::app::AppState;
use crate::auth::caller::CallerNote;

/// A method as a label: the standard ones by name, anything else as `other` (a client can send
/// any token as a method, and a label must not take unbounded values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One log line and one metrics observation per request: method, route *pattern* (never the
/// path or query, which carry ids and NHS numbers), status, latency, request id, and the
/// caller's role and organisation. Nothing else: no body, no token, no name.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    let elapsed = started.elapsed();
    let request = res.request();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16();
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        state
            .metrics
            .observe_request(&route, method, res.status().as_str(), elapsed);
    }
    let who = request.extensions().get::<CallerNote>().cloned();
    let role = who.as_ref().map_or("none", |c| c.role);
    let org = who.as_ref().and_then(|c| c.org.clone());
    let latency_ms = (elapsed.as_secs_f64() * 10_000.0).round() / 10.0;
    let request_id = res
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info!(
        target: "cpis::access",
        method,
        route = %route,
        status,
        latency_ms,
        request_id,
        role,
        org = org.as_deref().unwrap_or("none"),
        "request"
    );
    Ok(res)
}

/// Installs the global subscriber (once; later calls are no-ops). `RUST_LOG` filters. Colour
/// only when stderr is a terminal: escape codes in a log file or collector are noise.
pub fn init(json: bool) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
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
