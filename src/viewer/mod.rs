//! The clinician viewer (SPEC §10, issue #27): server-rendered pages at `{root}/viewer` for
//! care settings without an integrated EPR, served when `CPIS_VIEWER=on` (default off; on with
//! `CPIS_SANDBOX=1`). Plain forms and post-redirect-get: no JavaScript at all.
//!
//! - `routes`: the route table, mounted by `startup` when the viewer is served.
//! - `launch`: launch from an EPR (`POST /viewer/launch`): a signed, single-use token fills in
//!   the NHS number on Find a child.
//! - `sign_in`: the sandbox sign-in form, sign-out.
//! - `oidc`: OpenID Connect sign-in (authorization code, PKCE, state and nonce).
//! - `session`: server-side sessions in the database (idle 15 minutes, absolute 8 hours).
//! - `csrf`: the form token every POST carries.
//! - `limits`: in-memory rate limits on sign-in, launch and search.
//! - `journey`: **Find a child**, the search and its result page.
//! - `lookup`: the lookup itself, through `Auditor::disclosing` as the API's Flag search.
//! - `pages`: the askama templates (`templates/viewer/`), every one HTML-escaped.
//! - `headers`: CSP, referrer, nosniff, framing and no-store on every response.
//! - `assets`: NHS.UK frontend's CSS, embedded.
//! - `settings`: `CPIS_VIEWER*`.

pub mod assets;
pub mod csrf;
pub mod headers;
pub mod journey;
pub mod launch;
pub mod limits;
pub mod lookup;
pub mod oidc;
pub mod pages;
pub mod request;
pub mod routes;
pub mod session;
pub mod settings;
pub mod sign_in;

pub use settings::ViewerConfig;

/// The viewer's state: its configuration, and what follows from it and the base URL.
#[derive(Debug)]
pub struct Viewer {
    pub config: ViewerConfig,
    /// The server's root path (`routes::root_of`): links and cookies are under it.
    pub root: String,
    /// The Content-Security-Policy of every response.
    pub csp: String,
    /// Whether cookies are `Secure`: always, but over plain http on loopback.
    pub secure_cookies: bool,
    pub limits: limits::Limits,
    /// Searches a minute in one session (`CPIS_VIEWER_SEARCHES_PER_MINUTE`).
    pub searches_per_minute: u32,
    /// Verifies EPR launch tokens, when `CPIS_VIEWER_LAUNCH_*` is set.
    pub launcher: Option<launch::Launcher>,
    /// The OpenID Connect client, when `CPIS_VIEWER_OIDC_ISSUER` and its client are set.
    pub oidc: Option<oidc::Oidc>,
}

impl Viewer {
    /// The viewer of `config` at `base_url`; an ID token's claims read as an API token's are
    /// (`claims`: `CPIS_JWT_CLAIM_*`, `CPIS_JWT_ROLE_MAP`).
    pub fn new(
        config: ViewerConfig,
        base_url: &str,
        claims: crate::auth::claims::ClaimMap,
    ) -> Viewer {
        let launcher = config.launch.as_ref().and_then(|launch| {
            launch::Launcher::new(launch, &routes::public_root(base_url))
                .map_err(|e| tracing::error!(error = %e, "viewer launch not served"))
                .ok()
        });
        let oidc = match (&config.oidc_issuer, &config.oidc) {
            (Some(issuer), Some(client)) => {
                oidc::Oidc::new(issuer, client, &routes::public_root(base_url), claims)
                    .map_err(|e| tracing::error!(error = %e, "viewer OpenID Connect not served"))
                    .ok()
            }
            _ => None,
        };
        Viewer {
            launcher,
            oidc,
            csp: headers::content_security_policy(&config.frame_ancestors),
            root: routes::root_of(base_url),
            secure_cookies: !plain_http_on_loopback(base_url),
            limits: limits::Limits::default(),
            searches_per_minute: config
                .searches_per_minute
                .unwrap_or(limits::SEARCHES_PER_SESSION),
            config,
        }
    }
}

/// Whether the server is reached over plain http on a loopback address (a browser would not
/// send a `Secure` cookie back there).
fn plain_http_on_loopback(base_url: &str) -> bool {
    let Ok(url) = url::Url::parse(base_url) else {
        return false;
    };
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

/// Mounts the viewer's routes when it is served (`CPIS_VIEWER`).
pub fn configure(
    cfg: &mut actix_web::web::ServiceConfig,
    viewer: Option<&actix_web::web::Data<Viewer>>,
) {
    if let Some(viewer) = viewer {
        routes::configure(cfg, viewer.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_except_over_plain_http_on_loopback() {
        for (base, secure) in [
            ("http://127.0.0.1:8080/FHIR/R4", false),
            ("http://localhost:8080/FHIR/R4", false),
            ("http://[::1]:8080/FHIR/R4", false),
            ("https://127.0.0.1:8443/FHIR/R4", true),
            ("http://cpis.example.org/FHIR/R4", true),
            ("http://10.0.0.5/FHIR/R4", true),
        ] {
            assert_eq!(
                Viewer::new(
                    ViewerConfig::sandbox(),
                    base,
                    crate::auth::claims::ClaimMap::default()
                )
                .secure_cookies,
                secure,
                "{base}"
            );
        }
    }
}
