//! The viewer's routes, under `{root}/viewer`, every response through `headers::secure`:
//!
//! | Path                      | Methods | What                                            |
//! |---------------------------|---------|-------------------------------------------------|
//! | `/viewer`                 | GET     | **Find a child** (signed in; else to sign-in)   |
//! | `/viewer`                 | POST    | the search: recorded, then 303 to the result    |
//! | `/viewer/launch`          | POST    | launch from an EPR: to Find a child, filled in  |
//! | `/viewer/result`          | GET     | the last lookup's result, from the session      |
//! | `/viewer/sign-in`         | GET, POST | the sandbox sign-in form                      |
//! | `/viewer/callback`        | GET     | OpenID Connect: the provider's answer           |
//! | `/viewer/sign-out`        | POST    | ends the session                                |
//! | `/viewer/signed-out`      | GET     | says so                                         |
//! | `/viewer/assets/{name}`   | GET     | NHS.UK frontend's CSS                           |
//!
//! Anything else under `/viewer` is the 404 page; another method, the 405 page.

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};

use super::pages::Failure;
use super::{assets, headers, journey, launch, oidc, sign_in, Viewer};

/// The server's root path: the base URL's path without `/FHIR/R4` (usually empty).
pub fn root_of(base_url: &str) -> String {
    let path = url::Url::parse(base_url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    path.trim_end_matches('/')
        .strip_suffix("/FHIR/R4")
        .unwrap_or(path.trim_end_matches('/'))
        .to_string()
}

/// The base URL without `/FHIR/R4` (scheme, host and root path): `{root}` of SPEC §10 as a
/// full URL, which a launch token's `aud` names.
pub fn public_root(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/FHIR/R4").unwrap_or(base).to_string()
}

async fn not_found(viewer: web::Data<Viewer>) -> Result<HttpResponse, Failure> {
    Err(Failure::new(StatusCode::NOT_FOUND, &viewer.root))
}

async fn not_allowed(viewer: web::Data<Viewer>) -> HttpResponse {
    use actix_web::ResponseError;
    let mut res = Failure::new(StatusCode::METHOD_NOT_ALLOWED, &viewer.root).error_response();
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(not_allowed))
}

/// Mounts the viewer (when it is served: `viewer` is its state).
pub fn configure(cfg: &mut web::ServiceConfig, viewer: web::Data<Viewer>) {
    cfg.service(
        web::scope("/viewer")
            .app_data(viewer)
            .wrap(from_fn(headers::secure))
            .service(
                resource("")
                    .route(web::get().to(journey::show))
                    .route(web::post().to(journey::search)),
            )
            .service(resource("/launch").route(web::post().to(launch::launch)))
            .service(resource("/result").route(web::get().to(journey::result)))
            .service(
                resource("/sign-in")
                    .route(web::get().to(sign_in::show))
                    .route(web::post().to(sign_in::sign_in)),
            )
            .service(resource("/callback").route(web::get().to(oidc::callback)))
            .service(resource("/sign-out").route(web::post().to(sign_in::sign_out)))
            .service(resource("/signed-out").route(web::get().to(sign_in::signed_out)))
            .service(resource("/assets/{name}").route(web::get().to(assets::asset)))
            .default_service(web::to(not_found)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_base_url_path_without_the_fhir_base() {
        assert_eq!(root_of("http://127.0.0.1:8080/FHIR/R4"), "");
        assert_eq!(root_of("https://cpis.example.org/cpis/FHIR/R4/"), "/cpis");
        assert_eq!(root_of("not a url"), "");
        assert_eq!(
            public_root("https://cpis.example.org/cpis/FHIR/R4/"),
            "https://cpis.example.org/cpis"
        );
    }
}
