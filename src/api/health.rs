//! `GET /_health`: 200 when the database answers, 503 when not. No token needed.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::db;

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
