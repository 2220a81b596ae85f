//! `GET /_health`: 200 when the database answers, 503 when not. No token needed.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::AppState;
use crate::db;
use crate::lifecycle::Phase;

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let up = db::run(&state.pool, |conn| Ok(db::ping(conn)))
        .await
        .unwrap_or(false);
    if up {
        HttpResponse::Ok().json(json!({"status": "ok", "database": "up"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({"status": "unavailable", "database": "down"}))
    }
}

/// `GET /_ready`: 200 once the server is ready, 503 while it starts (migrates) or stops. The
/// database answering is `/_health`'s business (liveness); readiness is about this process.
/// With scheduled backups (`CPIS_BACKUP_DIR`), `backup` tells the age and size of the last good
/// one and whether the newest attempt failed: a failed backup never makes the server unready.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let phase = state.readiness.phase();
    match &state.backups {
        None => ready_answer(phase),
        Some(backups) => answer(
            phase,
            json!({"status": phase.as_str(), "backup": backups.details(state.clock.now_ms())}),
        ),
    }
}

/// The readiness answer for `phase` (also what the port answers while migrating).
pub fn ready_answer(phase: Phase) -> HttpResponse {
    answer(phase, json!({"status": phase.as_str()}))
}

fn answer(phase: Phase, body: serde_json::Value) -> HttpResponse {
    match phase {
        Phase::Ready => HttpResponse::Ok().json(body),
        Phase::Starting | Phase::Stopping => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body),
    }
}
