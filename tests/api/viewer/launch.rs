//! Launch from an EPR (SPEC §10, issue #27): `POST /viewer/launch` with a signed, single-use,
//! short-lived token fills in the NHS number on Find a child (through sign-in when there is no
//! session), still asks the visit question, and records nothing by itself; any bad token is a
//! 4xx page with nothing filled in.

use cpis::clock::Clock;
use cpis::viewer::settings::{LaunchConfig, LaunchKeys};
use cpis::viewer::ViewerConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::SET_COOKIE;
use reqwest::redirect;
use serde_json::{json, Value};

use super::*;

const NOW_S: i64 = T0 / 1000;

const RSA_A: &str = include_str!("../../../src/auth/testdata/rsa_a.pem");
const RSA_B: &str = include_str!("../../../src/auth/testdata/rsa_b.pem");
const EC_C: &str = include_str!("../../../src/auth/testdata/ec_c.pem");
const JWK_C: &str = include_str!("../../../src/auth/testdata/ec-c.jwk.json");
/// `openssl pkey -in src/auth/testdata/rsa_a.pem -pubout`
const RSA_A_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyDsPwLqMOYKTv5y9Ndpk
GusPMg4aLTCBb0VjV352lm1a40eaviSWV4twKqPUMDZ6y8glCEonNXA6/8hXBbdg
chv7kQu2UVO6L6mvDn2egHNvSkjQFJXV9s1nm3N24unIMc6Vg6+OH2bRU4pmSleG
YrrY3xkYyHJina4ELuBBG84LGoxZ98N4wljLkTN+DdYRh2wO2Ioo7bNaq9plY6QU
PjjAe/hpxkM0zASPmQJCXD47Q6D2hDpmnqKW+EmZbSpUN8nf3eEd6qaV5evi4sdx
QB8YFDBkKTeN30ERm2e3SLQvBHfK7AjlXAiosEIrU1gQ19FC/a2hQWMndGeq+M0n
xQIDAQAB
-----END PUBLIC KEY-----
";
const EPR: &str = "https://epr.example.nhs.uk";

/// A viewer app (sandbox sign-in) whose launches are signed by `keys`.
async fn launch_app(keys: LaunchKeys, issuers: &[&str]) -> TestApp {
    let clock = Clock::fixed(T0);
    let issuers: Vec<String> = issuers.iter().map(|i| i.to_string()).collect();
    let app = TestApp::spawn_with(|c| {
        c.viewer = ViewerConfig::sandbox();
        c.viewer.launch = Some(LaunchConfig { keys, issuers });
        c.dispatcher = false;
        c.clock = clock.clone();
    })
    .await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    app
}

pub(super) async fn rsa_app() -> TestApp {
    launch_app(LaunchKeys::PublicKey(RSA_A_PUBLIC.as_bytes().to_vec()), &[]).await
}

/// A JWKS document with the EC key, served on loopback; its URL.
async fn jwks_server() -> url::Url {
    let jwk: Value = serde_json::from_str(JWK_C).unwrap();
    let doc = json!({ "keys": [jwk] }).to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let doc = doc.clone();
        actix_web::App::new().route(
            "/jwks.json",
            actix_web::web::get().to(move || {
                let doc = doc.clone();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("application/json")
                        .body(doc)
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url::Url::parse(&format!("http://127.0.0.1:{port}/jwks.json")).unwrap()
}

/// Good claims for `app`, with a fresh `jti`.
pub(super) fn claims(app: &TestApp) -> Value {
    json!({
        "iss": EPR,
        "aud": format!("{}/viewer", app.base.trim_end_matches("/FHIR/R4")),
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": NOW_S,
        "exp": NOW_S + 120,
        "nhs_number": CHILD,
    })
}

fn signed(alg: Algorithm, pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub(super) fn rs256(claims: &Value) -> String {
    signed(Algorithm::RS256, RSA_A, None, claims)
}

fn filled_in(html: &str) -> bool {
    html.contains(&format!("name=\"nhs_number\" type=\"text\" inputmode=\"numeric\" spellcheck=\"false\" autocomplete=\"off\" aria-describedby=\"nhs-number-hint\" value=\"{CHILD}\""))
}

async fn accesses(app: &TestApp) -> usize {
    let res = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.ops(),
        )
        .await;
    assert_eq!(res.status(), 200);
    body(res).await["entry"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_launch_without_a_session_goes_through_sign_in_and_fills_in_the_number_only() {
    let app = rsa_app().await;
    let browser = Browser::new(&app);

    let res = browser.launch(&rs256(&claims(&app))).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/viewer");
    let cookies: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("cpis_viewer_launch=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    assert!(!cookies.iter().any(|c| c.contains(CHILD)));

    let to_sign_in = browser.get("/viewer").await;
    assert_eq!(to_sign_in.status(), 303);
    assert_eq!(location(&to_sign_in), "/viewer/sign-in");
    browser.sign_in().await;

    let html = browser.find().await;
    assert!(filled_in(&html), "{html}");
    assert!(
        !html.contains(" checked"),
        "the visit question has no answer"
    );
    assert_eq!(accesses(&app).await, 0, "a launch alone records nothing");
    // Filled in again on a refresh, until the search.
    assert!(filled_in(&browser.find().await));

    // The visit question is still asked: without an answer, the form again and nothing recorded.
    let csrf = csrf_of(&html);
    let unanswered = browser
        .post("/viewer", &[("csrf", &csrf), ("nhs_number", CHILD)])
        .await;
    assert_eq!(unanswered.status(), 400);
    assert_eq!(accesses(&app).await, 0);

    let searched = browser
        .post(
            "/viewer",
            &[
                ("csrf", &csrf),
                ("nhs_number", CHILD),
                ("visit", "unscheduled"),
            ],
        )
        .await;
    assert_eq!(searched.status(), 303);
    assert_eq!(location(&searched), "/viewer/result");
    assert_eq!(accesses(&app).await, 1);
    assert!(!filled_in(&browser.find().await), "spent by the search");
}

#[tokio::test]
async fn a_launch_with_a_session_fills_in_the_number_es256_from_a_jwks() {
    let jwks = jwks_server().await;
    let app = launch_app(LaunchKeys::Jwks(jwks), &[EPR]).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    assert!(!filled_in(&browser.find().await));

    let res = browser
        .launch(&signed(Algorithm::ES256, EC_C, Some("ec-c"), &claims(&app)))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/viewer");
    let html = browser.find().await;
    assert!(filled_in(&html), "{html}");
    assert!(!html.contains(" checked"));
    assert_eq!(accesses(&app).await, 0);

    // RS256 is not the EC key's algorithm.
    let res = browser.launch(&rs256(&claims(&app))).await;
    assert_eq!(res.status(), 400);
}

/// A refused launch: a 4xx page, no launch cookie, nothing filled in, nothing recorded.
async fn assert_refused(app: &TestApp, browser: &Browser, token: &str, what: &str) {
    let res = browser.launch(token).await;
    assert_eq!(res.status(), 400, "{what}");
    assert!(res.headers().get(SET_COOKIE).is_none(), "{what}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("This link from your clinical system cannot be used"),
        "{what}: {html}"
    );
    assert!(!filled_in(&browser.find().await), "{what}");
    assert_eq!(accesses(app).await, 0, "{what}");
}

#[tokio::test]
async fn bad_launches_are_refused_and_fill_in_nothing() {
    let app = rsa_app().await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&app);
        change(&mut c);
        c
    };

    let expired = with(&|c| {
        c["iat"] = json!(NOW_S - 290);
        c["exp"] = json!(NOW_S - 61);
    });
    assert_refused(&app, &browser, &rs256(&expired), "expired").await;
    let within_leeway = with(&|c| {
        c["iat"] = json!(NOW_S - 290);
        c["exp"] = json!(NOW_S - 59);
    });
    assert_eq!(
        Browser::new(&app)
            .launch(&rs256(&within_leeway))
            .await
            .status(),
        303,
        "expired less than 60 s ago"
    );
    let too_long = with(&|c| c["exp"] = json!(NOW_S + 301));
    assert_refused(
        &app,
        &browser,
        &rs256(&too_long),
        "exp more than 5 minutes after iat",
    )
    .await;
    let wrong_audience = with(&|c| c["aud"] = json!("https://cpis.example.org/viewer"));
    assert_refused(&app, &browser, &rs256(&wrong_audience), "wrong audience").await;
    let fhir_audience = with(&|c| c["aud"] = json!(app.base.clone()));
    assert_refused(
        &app,
        &browser,
        &rs256(&fhir_audience),
        "the FHIR base as audience",
    )
    .await;
    let bad_number = with(&|c| c["nhs_number"] = json!("9449306754"));
    assert_refused(&app, &browser, &rs256(&bad_number), "a bad NHS number").await;
    for claim in ["iss", "aud", "jti", "iat", "exp", "nhs_number"] {
        let missing = with(&|c| {
            c.as_object_mut().unwrap().remove(claim);
        });
        assert_refused(&app, &browser, &rs256(&missing), claim).await;
    }

    // Signed by another key; by the right key with another algorithm; HS256 with the public
    // key as its secret; not signed at all.
    let good = claims(&app);
    assert_refused(
        &app,
        &browser,
        &signed(Algorithm::RS256, RSA_B, None, &good),
        "bad signature",
    )
    .await;
    assert_refused(
        &app,
        &browser,
        &signed(Algorithm::PS256, RSA_A, None, &good),
        "PS256",
    )
    .await;
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(RSA_A_PUBLIC.as_bytes()),
    )
    .unwrap();
    assert_refused(&app, &browser, &hs256, "HS256").await;
    let rs = rs256(&good);
    let payload = rs.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    assert_refused(&app, &browser, &none, "alg none").await;
    let mut tampered = rs.clone();
    tampered.replace_range(rs.find('.').unwrap() + 1..rs.rfind('.').unwrap(), &{
        use base64::Engine;
        let mut other = good.clone();
        other["nhs_number"] = json!("9000000009");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.to_string())
    });
    assert_refused(&app, &browser, &tampered, "a changed payload").await;
    assert_refused(&app, &browser, "", "empty").await;

    let res = browser.post("/viewer/launch", &[("other", "x")]).await;
    assert_eq!(res.status(), 400, "no launch field");
}

#[tokio::test]
async fn a_launch_token_is_single_use() {
    let app = rsa_app().await;
    let token = rs256(&claims(&app));
    let first = Browser::new(&app);
    assert_eq!(first.launch(&token).await.status(), 303);
    let browser = Browser::new(&app);
    browser.sign_in().await;
    assert_refused(&app, &browser, &token, "replayed").await;
    // Another server on the same database (a restart, or a second process) refuses it too.
    // Same base URL (so the same audience), on a port of its own.
    let mut config = app.config.clone();
    config.base_url = Some(app.base.clone());
    let second = cpis::startup::Application::build(config).await.unwrap();
    let port = second.port();
    tokio::spawn(second.run_until_stopped());
    let elsewhere = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let res = elsewhere
        .post(format!("http://127.0.0.1:{port}/viewer/launch"))
        .form(&[("launch", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "replayed on another server");
    let fresh = elsewhere
        .post(format!("http://127.0.0.1:{port}/viewer/launch"))
        .form(&[("launch", &rs256(&claims(&app)))])
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 303, "another server takes a fresh launch");
    // The same jti from another issuer is another launch.
    let mut other = claims(&app);
    other["iss"] = json!("https://other-epr.example");
    let mut same_jti = claims(&app);
    same_jti["jti"] = other["jti"].clone();
    assert_eq!(first.launch(&rs256(&same_jti)).await.status(), 303);
    assert_eq!(first.launch(&rs256(&other)).await.status(), 303);
    assert_refused(
        &app,
        &browser,
        &rs256(&other),
        "replayed from the other issuer",
    )
    .await;
}

#[tokio::test]
async fn an_issuer_not_listed_is_refused() {
    let app = launch_app(
        LaunchKeys::PublicKey(RSA_A_PUBLIC.as_bytes().to_vec()),
        &["https://listed.example"],
    )
    .await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    assert_refused(
        &app,
        &browser,
        &rs256(&claims(&app)),
        "an issuer not listed",
    )
    .await;
    let mut listed = claims(&app);
    listed["iss"] = json!("https://listed.example");
    assert_eq!(
        Browser::new(&app).launch(&rs256(&listed)).await.status(),
        303
    );
}

#[tokio::test]
async fn launch_is_not_served_unless_configured() {
    let clock = Clock::fixed(T0);
    let app = TestApp::spawn_with(|c| {
        c.viewer = ViewerConfig::sandbox();
        c.clock = clock.clone();
    })
    .await;
    let res = Browser::new(&app)
        .post("/viewer/launch", &[("launch", "x")])
        .await;
    assert_eq!(res.status(), 404);
}
