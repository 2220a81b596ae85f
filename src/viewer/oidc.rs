//! OpenID Connect sign-in (SPEC §10), with the `openidconnect` crate: the authorization code
//! flow with PKCE (S256), `state` and `nonce`, the provider found by discovery from
//! `CPIS_VIEWER_OIDC_ISSUER` (cached five minutes, its JWKS with it), the redirect URI
//! `{root}/viewer/callback`, scopes `openid profile` and `CPIS_VIEWER_OIDC_SCOPES`.
//!
//! The client authenticates at the token endpoint with `client_secret_basic`
//! (`CPIS_VIEWER_OIDC_CLIENT_SECRET`) or `private_key_jwt` (`CPIS_VIEWER_OIDC_PRIVATE_KEY_FILE`,
//! as NHS CIS2 requires). `openidconnect` 4 has no `private_key_jwt`: the client assertion
//! (RFC 7523: `iss` = `sub` = the client id, `aud` the token endpoint, a random `jti`, five
//! minutes) is signed here with `jsonwebtoken` and sent as the token request's extra
//! parameters `client_assertion_type` and `client_assertion`, the client id in the body.
//!
//! `state`, `nonce` and the PKCE verifier are kept server-side (`viewer_oidc_states`, both
//! engines), bound to the browser by a cookie, and spent by the callback. The ID token is
//! verified by the library (signature by the provider's JWKS — RS256, PS256 or ES256 only —
//! `iss`, `aud`, `exp`, `nonce`); its claims become the caller exactly as an API token's do
//! (`auth::claims::ClaimMap`: `CPIS_JWT_CLAIM_*`, `CPIS_JWT_ROLE_MAP`), and only a caller who
//! may use the viewer gets a session (else the 403 page).

use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use super::pages::Failure;
use super::request::{client_address, cookie, db, see_other, session, set_cookie};
use super::settings::{ClientAuth, OidcClient};
use super::{limits, session as sessions, Viewer};
use crate::app::AppState;
use crate::auth::claims::ClaimMap;
use crate::db::schema::viewer_oidc_states;
use crate::db::{write_transaction, DbConn};
use crate::error::FhirError;

/// The cookie binding a sign-in under way to its browser.
pub const COOKIE: &str = "cpis_viewer_oidc";
/// How long a sign-in may take at the provider.
const PENDING_MS: i64 = 10 * 60 * 1000;
/// How long the discovery document (and its JWKS) is used before it is fetched again.
const METADATA_MAX_AGE: Duration = Duration::from_secs(300);
/// A client assertion's lifetime.
const ASSERTION_S: i64 = 300;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client proves itself at the token endpoint.
enum Auth {
    Secret(String),
    Key {
        alg: Algorithm,
        key: EncodingKey,
        kid: Option<String>,
    },
}

/// The viewer's OpenID Connect client.
pub struct Oidc {
    issuer: String,
    client_id: String,
    auth: Auth,
    scopes: Vec<String>,
    redirect: String,
    claims: ClaimMap,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A private key file's key and the algorithm its type signs: RSA RS256, P-256 ES256.
pub fn signing_key(pem: &[u8]) -> Result<(Algorithm, EncodingKey), String> {
    if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
        return Ok((Algorithm::RS256, key));
    }
    EncodingKey::from_ec_pem(pem)
        .map(|key| (Algorithm::ES256, key))
        .map_err(|_| "not an RSA or EC (P-256) private key in PEM".to_string())
}

/// What a callback brought back, once its state is found and spent.
struct Pending {
    nonce: String,
    verifier: String,
}

fn failed(why: &str, root: &str) -> Failure {
    tracing::warn!(reason = why, "viewer OpenID Connect sign-in failed");
    Failure::new(StatusCode::BAD_REQUEST, root)
}

impl Oidc {
    pub fn new(
        issuer: &str,
        client: &OidcClient,
        public_root: &str,
        claims: ClaimMap,
    ) -> Result<Oidc, String> {
        let auth = match &client.auth {
            ClientAuth::Secret(secret) => Auth::Secret(secret.clone()),
            ClientAuth::PrivateKey { pem, kid } => {
                let (alg, key) = signing_key(pem)?;
                Auth::Key {
                    alg,
                    key,
                    kid: kid.clone(),
                }
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // No redirects: a provider that redirects its endpoints is refused (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Oidc {
            issuer: issuer.to_string(),
            client_id: client.client_id.clone(),
            auth,
            scopes: client.scopes.clone(),
            redirect: format!("{public_root}/viewer/callback"),
            claims,
            http,
            metadata: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's discovery document and keys, fetched at most every five minutes.
    async fn metadata(&self) -> Result<CoreProviderMetadata, String> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref() {
            if at.elapsed() < METADATA_MAX_AGE {
                return Ok(metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn secret(&self) -> Option<ClientSecret> {
        match &self.auth {
            Auth::Secret(secret) => Some(ClientSecret::new(secret.clone())),
            Auth::Key { .. } => None,
        }
    }

    /// The `private_key_jwt` assertion for `token_endpoint`, if that is how the client signs in.
    fn assertion(&self, token_endpoint: &str) -> Result<Option<String>, String> {
        let Auth::Key { alg, key, kid } = &self.auth else {
            return Ok(None);
        };
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_endpoint,
            "jti": sessions::random_token(),
            "iat": now,
            "exp": now + ASSERTION_S,
        });
        let mut head = Header::new(*alg);
        head.kid = kid.clone();
        jsonwebtoken::encode(&head, &claims, key)
            .map(Some)
            .map_err(|e| format!("client assertion: {e}"))
    }
}

/// `GET /viewer/sign-in` with OpenID Connect: a new authorization request (its state, nonce
/// and PKCE verifier kept), and the browser sent to the provider.
pub async fn start(
    req: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    oidc: &Oidc,
) -> Result<HttpResponse, Failure> {
    let root = &viewer.root;
    if session(req, state, viewer).await?.is_some() {
        return Ok(see_other(viewer, ""));
    }
    let now = state.clock.now_ms();
    if !viewer
        .limits
        .sign_in_address
        .allow(&client_address(req), limits::SIGN_IN_PER_ADDRESS, now)
    {
        return Err(Failure::new(StatusCode::TOO_MANY_REQUESTS, root));
    }
    let metadata = oidc.metadata().await.map_err(|e| {
        tracing::error!(error = %e, "OpenID Connect provider unavailable");
        Failure::new(StatusCode::SERVICE_UNAVAILABLE, root)
    })?;
    let redirect = RedirectUrl::new(oidc.redirect.clone())
        .map_err(|_| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, root))?;
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(oidc.client_id.clone()), None)
            .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    for scope in &oidc.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf_state, nonce) = request.url();
    let browser = sessions::random_token();
    let row = (
        viewer_oidc_states::state_hash.eq(sessions::hash(csrf_state.secret())),
        viewer_oidc_states::browser_hash.eq(sessions::hash(&browser)),
        viewer_oidc_states::nonce.eq(nonce.secret().clone()),
        viewer_oidc_states::verifier.eq(verifier.secret().clone()),
        viewer_oidc_states::expires_ms.eq(now.saturating_add(PENDING_MS)),
    );
    db(state, viewer, move |conn| {
        write_transaction(conn, |conn| {
            diesel::delete(
                viewer_oidc_states::table.filter(viewer_oidc_states::expires_ms.lt(now)),
            )
            .execute(conn)?;
            diesel::insert_into(viewer_oidc_states::table)
                .values(row)
                .execute(conn)
                .map_err(FhirError::from)
        })
    })
    .await?;
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_string()))
        .finish();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(viewer, COOKIE, Some(&browser)),
    );
    Ok(res)
}

/// Spends the sign-in whose state is `given`, if this browser started it and it is not over.
fn take(
    conn: &mut DbConn,
    given: &str,
    browser: &str,
    now_ms: i64,
) -> Result<Option<Pending>, FhirError> {
    let key = sessions::hash(given);
    write_transaction(conn, |conn| {
        let found: Option<(String, String, String, i64)> = viewer_oidc_states::table
            .find(&key)
            .select((
                viewer_oidc_states::browser_hash,
                viewer_oidc_states::nonce,
                viewer_oidc_states::verifier,
                viewer_oidc_states::expires_ms,
            ))
            .first(conn)
            .optional()?;
        diesel::delete(viewer_oidc_states::table.find(&key)).execute(conn)?;
        Ok(found
            .filter(|(owner, _, _, until)| {
                super::csrf::matches(owner, Some(&sessions::hash(browser))) && *until >= now_ms
            })
            .map(|(_, nonce, verifier, _)| Pending { nonce, verifier }))
    })
}

/// The verified ID token's claims, as JSON: read without checking again, only after the
/// library has verified the same token (signature, issuer, audience, expiry, nonce).
fn payload(id_token: &str) -> Option<Value> {
    jsonwebtoken::dangerous::insecure_decode::<Value>(id_token)
        .ok()
        .map(|data| data.claims)
}

/// The first value of `name` in the request's query string.
fn query_field(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /viewer/callback`: the provider's answer. The state must be one this browser started
/// (and is spent); the code is exchanged with the PKCE verifier and the client's
/// authentication; the ID token verified; a health-care caller gets a session. Answers are
/// limited per client address, completed sign-ins per user (the ID token's `sub`): the 429
/// page, and no session.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let root = viewer.root.clone();
    let Some(oidc) = &viewer.oidc else {
        return Err(Failure::new(StatusCode::NOT_FOUND, &root));
    };
    let now = state.clock.now_ms();
    if !viewer
        .limits
        .callbacks
        .allow(&client_address(&req), limits::CALLBACKS_PER_ADDRESS, now)
    {
        return Err(Failure::new(StatusCode::TOO_MANY_REQUESTS, &root));
    }
    let field = |name: &str| query_field(&req, name);
    let Some(given) = field("state") else {
        return Err(failed("no state", &root));
    };
    // A state presented is spent, whoever presents it; only its own browser gets further.
    let browser = cookie(&req, COOKIE).unwrap_or_default();
    let pending = db(&state, &viewer, move |conn| {
        take(conn, &given, &browser, now)
    })
    .await?
    .ok_or_else(|| failed("unknown, spent or another browser's state", &root))?;
    let code = field("code").ok_or_else(|| failed("no code (the provider refused)", &root))?;
    let metadata = oidc.metadata().await.map_err(|e| failed(&e, &root))?;
    let token_endpoint = metadata
        .token_endpoint()
        .map(|u| u.to_string())
        .ok_or_else(|| failed("the provider names no token endpoint", &root))?;
    let redirect = RedirectUrl::new(oidc.redirect.clone())
        .map_err(|_| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, &root))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(oidc.client_id.clone()),
        oidc.secret(),
    )
    .set_redirect_uri(redirect)
    .set_auth_type(match oidc.auth {
        Auth::Secret(_) => AuthType::BasicAuth,
        Auth::Key { .. } => AuthType::RequestBody,
    });
    let mut exchange = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| failed(&e.to_string(), &root))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier));
    if let Some(assertion) = oidc
        .assertion(&token_endpoint)
        .map_err(|e| failed(&e, &root))?
    {
        exchange = exchange
            .add_extra_param("client_assertion_type", ASSERTION_TYPE)
            .add_extra_param("client_assertion", assertion);
    }
    let tokens = exchange
        .request_async(&oidc.http)
        .await
        .map_err(|e| failed(&format!("token endpoint: {e}"), &root))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| failed("no ID token", &root))?;
    let verifier = client.id_token_verifier().set_allowed_algs(vec![
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    ]);
    id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| failed(&format!("ID token: {e}"), &root))?;
    let claims = payload(&id_token.to_string())
        .ok_or_else(|| failed("ID token payload unreadable", &root))?;
    let who = oidc
        .claims
        .identity(&claims)
        .map_err(|e| failed(&e, &root))?;
    // Per user, as the sandbox form is per name: the provider's subject.
    if !viewer.limits.sign_in_user.allow(
        &format!("oidc:{}", who.sub),
        limits::SIGN_IN_PER_USER,
        now,
    ) {
        return Err(Failure::new(StatusCode::TOO_MANY_REQUESTS, &root));
    }
    super::sign_in::start_session(&state, &viewer, who, now, COOKIE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_key_file_signs_with_the_algorithm_of_its_type() {
        let rsa = include_bytes!("../auth/testdata/rsa_a.pem");
        let ec = include_bytes!("../auth/testdata/ec_c.pem");
        assert_eq!(
            signing_key(rsa).map(|(a, _)| a).ok(),
            Some(Algorithm::RS256)
        );
        assert_eq!(signing_key(ec).map(|(a, _)| a).ok(), Some(Algorithm::ES256));
        assert!(signing_key(b"no key").is_err());
    }
}
