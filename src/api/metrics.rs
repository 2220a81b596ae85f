//! `GET /metrics`: Prometheus text format, for an `operations` token on the main port; without
//! a token on `CPIS_METRICS_BIND` (a port for scrapers on a private network, `scrape_open`).

use actix_web::{web, HttpResponse};

use crate::app::AppState;
use crate::auth::{Action, Caller};
use crate::db;
use crate::error::FhirResult;

/// The content type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn scrape(state: web::Data<AppState>, caller: Caller) -> FhirResult<HttpResponse> {
    caller.require(Action::ReadMetrics)?;
    Ok(scrape_open(state).await)
}

/// The scrape itself; the database's part (outbox backlog, subscriptions in error) is left at
/// its last value when the database does not answer, so a scrape never fails.
pub async fn scrape_open(state: web::Data<AppState>) -> HttpResponse {
    let backlog = db::run(&state.pool, |conn| Ok(crate::metrics::backlog(conn)?)).await;
    let backlog = match backlog {
        Ok(backlog) => Some(backlog),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database did not answer");
            None
        }
    };
    let body = state
        .metrics
        .render(&state.pool, backlog, state.clock.now_ms());
    HttpResponse::Ok().content_type(TEXT_FORMAT).body(body)
}
