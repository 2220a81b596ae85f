//! Launch from an EPR (SPEC §10): `POST /viewer/launch`, a cross-site form post from the EPR's
//! page whose field `launch` is a signed JWT naming the child. The session cookie does not come
//! with it (`SameSite=Lax`) and there is no form token: the signature is the proof.
//!
//! The token is signed by a key from `CPIS_VIEWER_LAUNCH_JWKS_URL` (fetched and cached by
//! `auth::provider_keys`, as the API's provider keys are) or `CPIS_VIEWER_LAUNCH_PUBLIC_KEY_FILE`;
//! its algorithm is pinned to the key's type (RSA: RS256, P-256: ES256; `none`, HS* and any other
//! refused before the signature is looked at). Its claims: `iss` (one of
//! `CPIS_VIEWER_LAUNCH_ISSUERS` when set), `aud` exactly `{root}/viewer`, `jti` (single use:
//! kept in `viewer_launch_jtis` until the token could no longer be accepted, so a replay is
//! refused across restarts and server processes), `iat`, `exp` at most 5 minutes after `iat`
//! (60 s leeway), and `nhs_number`, a valid NHS number. Times are the server's clock (`Clock`).
//!
//! A good launch is kept on the server (`viewer_launches`, keyed by the hash of a random token
//! in the browser's launch cookie) and the browser goes (303) to **Find a child**; a session
//! picks the launch up there (through sign-in first when there is none), and the form shows
//! the NHS number filled in, still asking the visit question: nothing is recorded until the
//! clinician answers and searches. A refused launch is a 400 page, with nothing kept.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::limits::LAUNCHES_PER_ADDRESS;
use super::pages::{page, Failure, Layout, Link, MessagePage};
use super::request::{client_address, db, read_form, see_other, set_cookie};
use super::session as sessions;
use super::settings::{LaunchConfig, LaunchKeys};
use super::Viewer;
use crate::app::AppState;
use crate::auth::provider_keys::{KeyRefresh, KeySource, ProviderKeys};
use crate::db::schema::{viewer_launch_jtis, viewer_launches, viewer_sessions};
use crate::db::{write_transaction, DbConn};
use crate::error::FhirError;
use crate::fhir::nhs_number::NhsNumber;

/// The launch cookie: the random token of a launch waiting for its session.
pub const COOKIE: &str = "cpis_viewer_launch";
/// The form field holding the launch token.
pub const FIELD: &str = "launch";
/// The longest a launch token may live: `exp` at most this long after `iat`.
pub const LONGEST_S: i64 = 5 * 60;
/// Clock skew allowed on `exp` and `iat`.
pub const LEEWAY_S: i64 = 60;
/// How long a good launch waits for its browser to reach Find a child (sign-in included).
pub const PENDING_MS: i64 = 10 * 60 * 1000;

/// Where the launch tokens' keys are.
enum Keys {
    /// One public key, with the one algorithm its type signs.
    Static(Algorithm, Arc<DecodingKey>),
    /// A JWKS document, cached.
    Jwks(Arc<ProviderKeys>),
}

/// Verifies launch tokens (configured: `CPIS_VIEWER_LAUNCH_*`).
pub struct Launcher {
    keys: Keys,
    issuers: Vec<String>,
    /// `{root}/viewer`, as a full URL.
    audience: String,
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher")
            .field("issuers", &self.issuers)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A public key file's key and the algorithm its type signs: RSA is RS256, P-256 is ES256.
pub fn static_key(pem: &[u8]) -> Result<(Algorithm, DecodingKey), String> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((Algorithm::RS256, key));
    }
    DecodingKey::from_ec_pem(pem)
        .map(|key| (Algorithm::ES256, key))
        .map_err(|_| "not an RSA or EC (P-256) public key in PEM".to_string())
}

/// The claims a launch token must carry (each checked here, so a missing one is a refusal
/// like any other).
#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Value>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    nhs_number: Option<String>,
}

/// A verified launch: its single-use key and the child it names.
#[derive(Debug)]
pub struct Launch {
    /// SHA-256 of `iss` and `jti`.
    jti_hash: String,
    /// Until when the `jti` must be remembered (epoch ms): the last moment the token passes.
    keep_until_ms: i64,
    nhs: NhsNumber,
}

impl Launcher {
    /// The launcher of a configuration, for a server at `public_root` (the base URL without
    /// `/FHIR/R4`).
    pub fn new(config: &LaunchConfig, public_root: &str) -> Result<Launcher, String> {
        let keys = match &config.keys {
            LaunchKeys::Jwks(url) => Keys::Jwks(Arc::new(ProviderKeys::new(
                KeySource::Jwks(url.clone()),
                KeyRefresh::default(),
            )?)),
            LaunchKeys::PublicKey(pem) => {
                let (alg, key) = static_key(pem)?;
                Keys::Static(alg, Arc::new(key))
            }
        };
        Ok(Launcher {
            keys,
            issuers: config.issuers.clone(),
            audience: format!("{public_root}/viewer"),
        })
    }

    /// Verifies a launch token at `now_ms`; the error says why (for the log: it names neither
    /// the token nor the child).
    pub async fn verify(&self, token: &str, now_ms: i64) -> Result<Launch, &'static str> {
        let head = jsonwebtoken::decode_header(token).map_err(|_| "not a JWT")?;
        if !matches!(head.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err("algorithm not accepted");
        }
        let key = match &self.keys {
            Keys::Static(alg, key) if *alg == head.alg => key.clone(),
            Keys::Static(..) => return Err("algorithm not the key's"),
            Keys::Jwks(keys) => keys
                .key_for(head.kid.as_deref(), head.alg)
                .await
                .map_err(|_| "no key for the token's kid and algorithm")?,
        };
        // The signature and the algorithm here; the claims below, on the server's clock.
        let mut validation = Validation::new(head.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|_| "bad signature or claims")?
            .claims;
        self.check(claims, now_ms)
    }

    fn check(&self, claims: Claims, now_ms: i64) -> Result<Launch, &'static str> {
        let now_s = now_ms.div_euclid(1000);
        let iss = claims.iss.ok_or("no iss")?;
        if !self.issuers.is_empty() && !self.issuers.contains(&iss) {
            return Err("issuer not accepted");
        }
        let addressed = match claims.aud {
            Some(Value::String(aud)) => aud == self.audience,
            Some(Value::Array(auds)) => {
                matches!(auds.as_slice(), [Value::String(aud)] if *aud == self.audience)
            }
            _ => false,
        };
        if !addressed {
            return Err("wrong audience");
        }
        let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256);
        let jti = jti.ok_or("no jti")?;
        let (iat, exp) = (claims.iat.ok_or("no iat")?, claims.exp.ok_or("no exp")?);
        if exp < iat || exp.saturating_sub(iat) > LONGEST_S {
            return Err("exp more than 5 minutes after iat");
        }
        if iat > now_s.saturating_add(LEEWAY_S) {
            return Err("issued in the future");
        }
        if now_s > exp.saturating_add(LEEWAY_S) {
            return Err("expired");
        }
        let nhs = claims.nhs_number.ok_or("no nhs_number")?;
        let nhs = NhsNumber::parse(&nhs).map_err(|_| "not a valid NHS number")?;
        Ok(Launch {
            jti_hash: sessions::hash(&format!("{iss}\n{jti}")),
            keep_until_ms: exp.saturating_add(LEEWAY_S).saturating_mul(1000),
            nhs,
        })
    }
}

/// Spends the launch's `jti` and keeps the launch for the browser holding `token`; a `jti`
/// seen before is `Ok(false)` (a replay), and nothing is kept. Expired entries are purged.
pub fn keep(
    conn: &mut DbConn,
    launch: &Launch,
    token: &str,
    now_ms: i64,
) -> Result<bool, FhirError> {
    let kept = write_transaction(conn, |conn| {
        diesel::delete(viewer_launch_jtis::table.filter(viewer_launch_jtis::expires_ms.lt(now_ms)))
            .execute(conn)?;
        diesel::delete(viewer_launches::table.filter(viewer_launches::expires_ms.lt(now_ms)))
            .execute(conn)?;
        diesel::insert_into(viewer_launch_jtis::table)
            .values((
                viewer_launch_jtis::jti_hash.eq(&launch.jti_hash),
                viewer_launch_jtis::expires_ms.eq(launch.keep_until_ms),
            ))
            .execute(conn)?;
        diesel::insert_into(viewer_launches::table)
            .values((
                viewer_launches::token_hash.eq(sessions::hash(token)),
                viewer_launches::nhs_number.eq(launch.nhs.as_str()),
                viewer_launches::expires_ms.eq(now_ms.saturating_add(PENDING_MS)),
            ))
            .execute(conn)
            .map_err(FhirError::from)
    });
    match kept {
        Ok(_) => Ok(true),
        // The jti's primary key: spent already (the launch token is random: not a collision).
        Err(FhirError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Moves the launch of the browser holding `token` (if it is still waiting) into the session
/// `session_hash`; returns its NHS number. The waiting launch is gone either way.
pub fn pick_up(
    conn: &mut DbConn,
    token: &str,
    session_hash: &str,
    now_ms: i64,
) -> Result<Option<String>, FhirError> {
    let key = sessions::hash(token);
    write_transaction(conn, |conn| {
        let waiting: Option<(String, i64)> = viewer_launches::table
            .find(&key)
            .select((viewer_launches::nhs_number, viewer_launches::expires_ms))
            .first(conn)
            .optional()?;
        diesel::delete(viewer_launches::table.find(&key)).execute(conn)?;
        let Some((nhs, _)) = waiting.filter(|(_, until)| *until >= now_ms) else {
            return Ok(None);
        };
        diesel::update(viewer_sessions::table.find(session_hash))
            .set(viewer_sessions::launch_nhs.eq(Some(&nhs)))
            .execute(conn)?;
        Ok(Some(nhs))
    })
}

/// The page of a refused launch (400): nothing filled in, nothing recorded.
fn refused(viewer: &Viewer, why: &'static str) -> HttpResponse {
    tracing::info!(reason = why, "viewer launch refused");
    page(
        StatusCode::BAD_REQUEST,
        &MessagePage {
            layout: Layout::new(&viewer.root, None),
            title: "This link from your clinical system cannot be used",
            lines: vec![
                "It may have expired, have been used already, or not be meant for this service.".to_string(),
                "Open the child's record from your clinical system again, or sign in and search for the child.".to_string(),
            ],
            link: Some(Link {
                href: format!("{}/viewer", viewer.root),
                text: "Go to Find a child",
            }),
        },
    )
}

/// `POST /viewer/launch`: verifies the launch token, keeps the launch, and sends the browser
/// to Find a child with the launch cookie. Not configured: the 404 page. Launches are limited
/// per client address (`limits::LAUNCHES_PER_ADDRESS`: the 429 page), good or bad.
pub async fn launch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let Some(launcher) = &viewer.launcher else {
        return Err(Failure::new(StatusCode::NOT_FOUND, &viewer.root));
    };
    let now = state.clock.now_ms();
    if !viewer
        .limits
        .launches
        .allow(&client_address(&req), LAUNCHES_PER_ADDRESS, now)
    {
        return Err(Failure::new(StatusCode::TOO_MANY_REQUESTS, &viewer.root));
    }
    let form = read_form(payload, &viewer.root).await?;
    let Some(token) = form.get(FIELD) else {
        return Ok(refused(&viewer, "no launch field"));
    };
    let verified = match launcher.verify(token, now).await {
        Ok(verified) => verified,
        Err(why) => return Ok(refused(&viewer, why)),
    };
    let browser = sessions::random_token();
    let kept_for = browser.clone();
    let kept = db(&state, &viewer, move |conn| {
        keep(conn, &verified, &kept_for, now)
    })
    .await?;
    if !kept {
        return Ok(refused(&viewer, "replayed"));
    }
    let mut res = see_other(&viewer, "");
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&viewer, COOKIE, Some(&browser)),
    );
    Ok(res)
}

/// The launch waiting for this request's browser, if it has one: its NHS number, now the
/// session's. Its cookie is then spent (the caller clears it).
pub async fn picked_up(
    req: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    session_hash: &str,
) -> Result<Option<String>, Failure> {
    let Some(token) = super::request::cookie(req, COOKIE) else {
        return Ok(None);
    };
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let now = state.clock.now_ms();
    let session_hash = session_hash.to_string();
    db(state, viewer, move |conn| {
        pick_up(conn, &token, &session_hash, now)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher(issuers: &[&str]) -> Launcher {
        Launcher {
            keys: Keys::Static(Algorithm::HS256, Arc::new(DecodingKey::from_secret(b"x"))),
            issuers: issuers.iter().map(|i| i.to_string()).collect(),
            audience: "https://cpis.example/viewer".into(),
        }
    }

    fn claims(iat: i64, exp: i64) -> Claims {
        Claims {
            iss: Some("https://epr.example".into()),
            aud: Some(Value::String("https://cpis.example/viewer".into())),
            jti: Some("j-1".into()),
            iat: Some(iat),
            exp: Some(exp),
            nhs_number: Some("9449306753".into()),
        }
    }

    #[test]
    fn a_key_file_pins_the_algorithm_of_its_type() {
        // `openssl pkey -in src/auth/testdata/ec_c.pem -pubout`
        let ec = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDaoLwVykLDjQoj0fvMXM3yQIo1u0
uD437LGmBwwQnrKl42v/VJ0z8sCoKi7Qh17puFt2f9AXS+XvpbcFToBGTw==
-----END PUBLIC KEY-----
";
        assert_eq!(
            static_key(ec.as_bytes()).map(|(alg, _)| alg).ok(),
            Some(Algorithm::ES256)
        );
        assert!(static_key(b"not a key").is_err());
    }

    #[test]
    fn a_launch_lives_at_most_five_minutes_with_a_minute_of_leeway() {
        let l = launcher(&[]);
        let now = 1_000_000;
        assert!(l.check(claims(now, now + 300), now * 1000).is_ok());
        assert_eq!(
            l.check(claims(now, now + 301), now * 1000).err(),
            Some("exp more than 5 minutes after iat")
        );
        assert!(l.check(claims(now - 300, now - 60), now * 1000).is_ok());
        assert_eq!(
            l.check(claims(now - 300, now - 61), now * 1000).err(),
            Some("expired")
        );
        assert_eq!(
            l.check(claims(now + 61, now + 100), now * 1000).err(),
            Some("issued in the future")
        );
    }

    #[test]
    fn audience_issuer_jti_and_nhs_number_are_checked() {
        let now = 1_000_000;
        let l = launcher(&["https://epr.example"]);
        let mut c = claims(now, now + 60);
        c.aud = Some(serde_json::json!(["https://cpis.example/viewer", "other"]));
        assert_eq!(l.check(c, now * 1000).err(), Some("wrong audience"));
        let mut c = claims(now, now + 60);
        c.iss = Some("https://other.example".into());
        assert_eq!(l.check(c, now * 1000).err(), Some("issuer not accepted"));
        let mut c = claims(now, now + 60);
        c.jti = None;
        assert_eq!(l.check(c, now * 1000).err(), Some("no jti"));
        let mut c = claims(now, now + 60);
        c.nhs_number = Some("9449306754".into());
        assert_eq!(l.check(c, now * 1000).err(), Some("not a valid NHS number"));
    }
}
