//! OpenID Connect sign-in to the viewer (SPEC §10, issue #27), against a fake provider run in
//! the test on loopback: discovery, a JWKS, and a token endpoint that checks the code, the
//! PKCE verifier and the client's authentication (`client_secret_basic` or `private_key_jwt`).
//! The authorization step (a person at the provider) is the test itself: it reads the
//! authorization request the viewer sent the browser to, and answers with a code.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use cpis::auth::claims::{parse_role_map, ClaimMap, ClaimPath};
use cpis::viewer::settings::{ClientAuth, OidcClient};
use cpis::viewer::ViewerConfig;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::redirect;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const CLIENT_ID: &str = "cpis-viewer";
const SECRET: &str = "s3cret-of-the-viewer";
/// The provider signs ID tokens with this key (kid rsa-a).
const RSA_A: &str = include_str!("../../src/auth/testdata/rsa_a.pem");
const JWK_A: &str = include_str!("../../src/auth/testdata/rsa-a.jwk.json");
/// The viewer's private_key_jwt key, and the public half the provider knows.
const EC_C: &str = include_str!("../../src/auth/testdata/ec_c.pem");
const JWK_C: &str = include_str!("../../src/auth/testdata/ec-c.jwk.json");
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the provider expects the client to authenticate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Basic,
    PrivateKeyJwt,
}

/// A code the provider handed out: the PKCE challenge it was asked with, and the ID token's
/// nonce and claims.
struct Grant {
    challenge: String,
    nonce: String,
    claims: Value,
}

struct Provider {
    issuer: String,
    mode: Mode,
    grants: Mutex<HashMap<String, Grant>>,
    /// Why the token endpoint last refused, if it did.
    refusals: Mutex<Vec<String>>,
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

fn b64(bytes: &[u8]) -> String {
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
async fn provider(mode: Mode) -> Arc<Provider> {
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
async fn oidc_app(provider: &Provider, claims: ClaimMap) -> TestApp {
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
    })
    .await
}

fn nurse() -> Value {
    json!({
        "sub": "cis2-555000111",
        "role": "health-care",
        "name": "Jane Smith",
        "org": "RJ1",
        "job_role": "Staff Nurse",
    })
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A sign-in started: the authorization request's parameters, and the sign-in cookie.
struct Started {
    params: HashMap<String, String>,
    cookie: String,
}

async fn start(app: &TestApp, client: &reqwest::Client, provider: &Provider) -> Started {
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
fn grant(provider: &Provider, started: &Started, nonce: &str, claims: Value) -> String {
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

async fn callback(
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

/// Signs in through the provider with `mode`; Find a child is then served.
async fn signs_in_with(mode: Mode) {
    let provider = provider(mode).await;
    let app = oidc_app(&provider, ClaimMap::default()).await;
    let client = browser();
    let started = start(&app, &client, &provider).await;
    let p = &started.params;
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], CLIENT_ID);
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(
        p["redirect_uri"],
        format!("{}/viewer/callback", app.base.trim_end_matches("/FHIR/R4"))
    );
    assert_eq!(p["scope"], "openid profile nationalrbacaccess");
    assert!(p["state"].len() >= 16 && p["nonce"].len() >= 16);

    let code = grant(&provider, &started, &p["nonce"], nurse());
    let res = callback(&app, &client, &code, &p["state"]).await;
    assert_eq!(res.status(), 303, "{:?}", provider.refusals.lock());
    assert_eq!(location(&res), "/viewer");
    let find = client
        .get(format!("{}/viewer", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(find.status(), 200);
    let html = find.text().await.unwrap();
    assert!(html.contains("Jane Smith"), "{html}");
    assert!(html.contains("RJ1"));
    assert_eq!(app.count_rows("viewer_sessions"), 1);
    assert_eq!(app.count_rows("viewer_oidc_states"), 0, "spent");
}

#[tokio::test]
async fn signs_in_with_client_secret_basic() {
    signs_in_with(Mode::Basic).await;
}

#[tokio::test]
async fn signs_in_with_private_key_jwt() {
    signs_in_with(Mode::PrivateKeyJwt).await;
}

/// A callback that must sign nobody in.
async fn refused(app: &TestApp, res: reqwest::Response, status: u16) {
    assert_eq!(res.status(), status);
    assert!(res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("cpis_viewer=")));
    assert_eq!(app.count_rows("viewer_sessions"), 0);
}

#[tokio::test]
async fn a_wrong_or_replayed_state_signs_nobody_in() {
    let provider = provider(Mode::Basic).await;
    let app = oidc_app(&provider, ClaimMap::default()).await;
    let client = browser();
    let started = start(&app, &client, &provider).await;
    let code = grant(&provider, &started, &started.params["nonce"], nurse());
    refused(
        &app,
        callback(&app, &client, &code, "not-the-state").await,
        400,
    )
    .await;
    // The state is another browser's: refused, and spent.
    let other = browser();
    refused(
        &app,
        callback(&app, &other, &code, &started.params["state"]).await,
        400,
    )
    .await;
    refused(
        &app,
        callback(&app, &client, &code, &started.params["state"]).await,
        400,
    )
    .await;

    // A state used once (successfully) cannot be used again, even with its cookie.
    let started = start(&app, &client, &provider).await;
    let code = grant(&provider, &started, &started.params["nonce"], nurse());
    let first = callback(&app, &client, &code, &started.params["state"]).await;
    assert_eq!(first.status(), 303);
    let code = grant(&provider, &started, &started.params["nonce"], nurse());
    let replay = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/viewer/callback", app.address))
        .query(&[("code", code.as_str()), ("state", &started.params["state"])])
        .header("cookie", &started.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(app.count_rows("viewer_sessions"), 1, "only the first");
}

#[tokio::test]
async fn an_id_token_with_another_nonce_signs_nobody_in() {
    let provider = provider(Mode::Basic).await;
    let app = oidc_app(&provider, ClaimMap::default()).await;
    let client = browser();
    let started = start(&app, &client, &provider).await;
    let code = grant(&provider, &started, "another-nonce", nurse());
    refused(
        &app,
        callback(&app, &client, &code, &started.params["state"]).await,
        400,
    )
    .await;
}

#[tokio::test]
async fn a_bad_pkce_verifier_or_client_is_refused_by_the_token_endpoint() {
    let provider = provider(Mode::PrivateKeyJwt).await;
    let app = oidc_app(&provider, ClaimMap::default()).await;
    let client = browser();
    let started = start(&app, &client, &provider).await;
    let code = uuid::Uuid::new_v4().to_string();
    provider.grants.lock().insert(
        code.clone(),
        Grant {
            challenge: b64(&Sha256::digest(b"a verifier the viewer never made")),
            nonce: started.params["nonce"].clone(),
            claims: nurse(),
        },
    );
    refused(
        &app,
        callback(&app, &client, &code, &started.params["state"]).await,
        400,
    )
    .await;
    assert_eq!(*provider.refusals.lock(), ["PKCE verifier"]);

    // A client the provider expects to use private_key_jwt, configured with a secret.
    let basic_app = oidc_app(
        &Provider {
            issuer: provider.issuer.clone(),
            mode: Mode::Basic,
            grants: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Vec::new()),
        },
        ClaimMap::default(),
    )
    .await;
    let client = browser();
    let started = start(&basic_app, &client, &provider).await;
    let code = grant(&provider, &started, &started.params["nonce"], nurse());
    refused(
        &basic_app,
        callback(&basic_app, &client, &code, &started.params["state"]).await,
        400,
    )
    .await;
    assert_eq!(
        provider.refusals.lock().last().map(String::as_str),
        Some("client authentication")
    );
}

#[tokio::test]
async fn only_health_care_may_sign_in_and_cis2_roles_map_as_for_api_tokens() {
    let provider = provider(Mode::PrivateKeyJwt).await;
    // NHS CIS2 (docs/identity-providers.md): the role the user selected at login
    // (`selected_roleid`), picked out of `nhsid_nrbac_roles`; its code mapped with
    // CPIS_JWT_ROLE_MAP, its organisation the care setting.
    let selected = |field: &str| {
        ClaimPath::parse(&format!(
            "$.nhsid_nrbac_roles[?@.person_roleid == $.selected_roleid].{field}"
        ))
        .unwrap()
    };
    let cis2 = ClaimMap {
        role: selected("role_code"),
        org: selected("org_code"),
        job_role: selected("role_name"),
        role_values: Some(
            parse_role_map("S8000:G8000:R8001=health-care,S8000:G8000:R8008=social-care").unwrap(),
        ),
        ..ClaimMap::default()
    };
    let app = oidc_app(&provider, cis2).await;
    let claims = |selected: &str| {
        json!({
            "sub": "910000000001",
            "name": "Sam Jones",
            "selected_roleid": selected,
            "nhsid_nrbac_roles": [
                {"person_roleid": "555021935107", "org_code": "RJ1",
                 "role_name": "\"Clinical\":\"Clinical Provision\":\"Nurse\"",
                 "role_code": "S8000:G8000:R8001"},
                {"person_roleid": "555021935108", "org_code": "E09000030",
                 "role_name": "Social Worker", "role_code": "S8000:G8000:R8008"},
            ],
        })
    };

    let client = browser();
    let started = start(&app, &client, &provider).await;
    let code = grant(
        &provider,
        &started,
        &started.params["nonce"],
        claims("555021935108"),
    );
    let res = callback(&app, &client, &code, &started.params["state"]).await;
    let html_status = res.status();
    refused(&app, res, 403).await;
    assert_eq!(html_status, 403);

    let started = start(&app, &client, &provider).await;
    let code = grant(
        &provider,
        &started,
        &started.params["nonce"],
        claims("555021935107"),
    );
    let res = callback(&app, &client, &code, &started.params["state"]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.count_rows("viewer_sessions"), 1);
}
