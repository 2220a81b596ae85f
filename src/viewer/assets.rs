//! NHS.UK frontend's compiled CSS (a pinned release, `assets/nhsuk-frontend/`), in the binary:
//! served at `/viewer/assets/{STYLESHEET}` with a long cache (the name carries the version).

use actix_web::{web, HttpResponse};

use super::pages::Failure;
use super::routes::root_of;
use crate::app::AppState;

/// The stylesheet's file name: the release is in it, so it may be cached for good.
pub const STYLESHEET: &str = "nhsuk-frontend-10.6.1.min.css";

const CSS: &[u8] = include_bytes!("../../assets/nhsuk-frontend/nhsuk-frontend-10.6.1.min.css");

/// `GET /viewer/assets/{name}`.
pub async fn asset(
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Failure> {
    if name.as_str() != STYLESHEET {
        return Err(Failure::new(
            actix_web::http::StatusCode::NOT_FOUND,
            &root_of(&state.base_url),
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
        .body(CSS))
}
