//! A fake OpenID Connect provider for the viewer's sign-in tests, run in the test on
//! loopback: discovery, a JWKS, and a token endpoint that checks the code, the PKCE verifier
//! and the client's authentication (`client_secret_basic` or `private_key_jwt`). The
//! authorization step (a person at the provider) is the test itself: it reads the
//! authorization request the viewer sent the browser to, and answers with a code. (CI's browser
//! suite signs in through a real provider: `.ci/viewer_oidc.sh`.)

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use cpis::auth::claims::ClaimMap;
use cpis::viewer::settings::{ClientAuth, OidcClient};
use cpis::viewer::ViewerConfig;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use reqwest::header::SET_COOKIE;
use reqwest::redirect;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;

pub(super) const CLIENT_ID: &str = "cpis-viewer";
const SECRET: &str = "s3cret-of-the-viewer";
/// The provider signs ID tokens with this key (kid rsa-a).
const RSA_A: &str = include_str!("../../../src/auth/testdata/rsa_a.pem");
const JWK_A: &str = include_str!("../../../src/auth/testdata/rsa-a.jwk.json");
/// The viewer's private_key_jwt key, and the public half the provider knows.
const EC_C: &str = include_str!("../../../src/auth/testdata/ec_c.pem");
const JWK_C: &str = include_str!("../../../src/auth/testdata/ec-c.jwk.json");
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the provider expects the client to authenticate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mode {
    Basic,
    PrivateKeyJwt,
}

/// A code the provider handed out: the PKCE challenge it was asked with, and the ID token's
/// nonce and claims.
pub(super) struct Grant {
    pub(super) challenge: String,
    pub(super) nonce: String,
    pub(super) claims: Value,
}

pub(super) struct Provider {
    pub(super) issuer: String,
    pub(super) mode: Mode,
    pub(super) grants: Mutex<HashMap<String, Grant>>,
    /// Why the token endpoint last refused, if it did.
    pub(super) refusals: Mutex<Vec<String>>,
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Provider {
    fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{}/authorize", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "jwks_uri": format!("{}/jwks", self.issuer),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        })
    }

    fn client_ok(&self, req: &actix_web::HttpRequest, form: &HashMap<String, String>) -> bool {
        match self.mode {
            Mode::Basic => {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{CLIENT_ID}:{SECRET}"))
                );
                req.headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    == Some(expected.as_str())
                    && !form.contains_key("client_secret")
            }
            Mode::PrivateKeyJwt => {
                if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE)
                    || form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
                {
                    return false;
                }
                let jwk = serde_json::from_str(JWK_C).unwrap();
                let key = DecodingKey::from_jwk(&jwk).unwrap();
                let mut validation = Validation::new(Algorithm::ES256);
                validation.set_audience(&[format!("{}/token", self.issuer)]);
                validation.set_issuer(&[CLIENT_ID]);
                validation.sub = Some(CLIENT_ID.to_string());
                validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
                let assertion = form.get("client_assertion").cloned().unwrap_or_default();
                jsonwebtoken::decode::<Value>(&assertion, &key, &validation)
                    .is_ok_and(|d| d.claims["jti"].as_str().is_some_and(|j| !j.is_empty()))
            }
        }
    }

    fn token(&self, req: &actix_web::HttpRequest, body: &[u8]) -> actix_web::HttpResponse {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let refuse = |why: &str| {
            self.refusals.lock().push(why.to_string());
            actix_web::HttpResponse::BadRequest().json(json!({ "error": "invalid_grant" }))
        };
        if !self.client_ok(req, &form) {
            return refuse("client authentication");
        }
        if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return refuse("grant type");
        }
        let code = form.get("code").cloned().unwrap_or_default();
        let Some(grant) = self.grants.lock().remove(&code) else {
            return refuse("unknown code");
        };
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        if b64(&Sha256::digest(verifier.as_bytes())) != grant.challenge {
            return refuse("PKCE verifier");
        }
        let mut claims = grant.claims;
        for (k, v) in [
            ("iss", json!(self.issuer)),
            ("aud", json!(CLIENT_ID)),
            ("iat", json!(now_s())),
            ("exp", json!(now_s() + 300)),
            ("nonce", json!(grant.nonce)),
        ] {
            claims[k] = v;
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-a".into());
        let id_token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(RSA_A.as_bytes()).unwrap(),
        )
        .unwrap();
        actix_web::HttpResponse::Ok().json(json!({
            "access_token": "opaque",
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }))
    }
}

/// Starts the fake provider; it lives as long as the test's runtime.
pub(super) async fn provider(mode: Mode) -> Arc<Provider> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let provider = Arc::new(Provider {
        issuer: format!("http://127.0.0.1:{port}/realms/nhs"),
        mode,
        grants: Mutex::new(HashMap::new()),
        refusals: Mutex::new(Vec::new()),
    });
    let shared = provider.clone();
    let server = actix_web::HttpServer::new(move || {
        let p = shared.clone();
        let (d, t) = (p.clone(), p.clone());
        actix_web::App::new()
            .route(
                "/realms/nhs/.well-known/openid-configuration",
                actix_web::web::get().to(move || {
                    let doc = d.discovery();
                    async move { actix_web::HttpResponse::Ok().json(doc) }
                }),
            )
            .route(
                "/realms/nhs/jwks",
                actix_web::web::get().to(|| async {
                    let jwk: Value = serde_json::from_str(JWK_A).unwrap();
                    actix_web::HttpResponse::Ok().json(json!({ "keys": [jwk] }))
                }),
            )
            .route(
                "/realms/nhs/token",
                actix_web::web::post().to(
                    move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                        let res = t.token(&req, &body);
                        async move { res }
                    },
                ),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    provider
}

/// A viewer whose sign-in is the provider's, with `claims` read as `CPIS_JWT_CLAIM_*` say.
pub(super) async fn oidc_app(provider: &Provider, claims: ClaimMap) -> TestApp {
    oidc_app_with(provider, claims, |_| {}).await
}

/// `oidc_app`, its configuration then changed by `customise`.
pub(super) async fn oidc_app_with(
    provider: &Provider,
    claims: ClaimMap,
    customise: impl FnOnce(&mut cpis::config::Config),
) -> TestApp {
    let auth = match provider.mode {
        Mode::Basic => ClientAuth::Secret(SECRET.into()),
        Mode::PrivateKeyJwt => ClientAuth::PrivateKey {
            pem: EC_C.as_bytes().to_vec(),
            kid: Some("ec-c".into()),
        },
    };
    TestApp::spawn_with(|c| {
        c.viewer = ViewerConfig {
            enabled: true,
            oidc_issuer: Some(provider.issuer.clone()),
            oidc: Some(OidcClient {
                client_id: CLIENT_ID.into(),
                auth,
                scopes: vec!["nationalrbacaccess".into()],
            }),
            ..ViewerConfig::default()
        };
        c.claims = claims;
        c.dispatcher = false;
        customise(c);
    })
    .await
}

pub(super) fn nurse() -> Value {
    json!({
        "sub": "cis2-555000111",
        "role": "health-care",
        "name": "Jane Smith",
        "org": "RJ1",
        "job_role": "Staff Nurse",
    })
}

pub(super) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// A sign-in started: the authorization request's parameters, and the sign-in cookie.
pub(super) struct Started {
    pub(super) params: HashMap<String, String>,
    pub(super) cookie: String,
}

pub(super) async fn start(app: &TestApp, client: &reqwest::Client, provider: &Provider) -> Started {
    let res = client
        .get(format!("{}/viewer/sign-in", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("cpis_viewer_oidc="))
        .expect("the sign-in cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let to = url::Url::parse(&location(&res)).unwrap();
    assert_eq!(
        format!("{}{}", to.origin().ascii_serialization(), to.path()),
        format!("{}/authorize", provider.issuer)
    );
    let params: HashMap<String, String> = to.query_pairs().into_owned().collect();
    Started { params, cookie }
}

/// The provider's answer to an authorization request: a code for `claims`, with `nonce`.
pub(super) fn grant(provider: &Provider, started: &Started, nonce: &str, claims: Value) -> String {
    let code = uuid::Uuid::new_v4().to_string();
    provider.grants.lock().insert(
        code.clone(),
        Grant {
            challenge: started.params["code_challenge"].clone(),
            nonce: nonce.to_string(),
            claims,
        },
    );
    code
}

pub(super) async fn callback(
    app: &TestApp,
    client: &reqwest::Client,
    code: &str,
    state: &str,
) -> reqwest::Response {
    client
        .get(format!("{}/viewer/callback", app.address))
        .query(&[("code", code), ("state", state)])
        .send()
        .await
        .unwrap()
}
