//! Authentication (401) and authorisation (403) on every kind of endpoint.

use base64::Engine;
use cpis::auth::Role;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn assert_401(app: &TestApp, token: Option<&str>) {
    let res = app.request(Method::GET, "/Organization", token, None).await;
    assert_eq!(res.status(), 401);
    assert!(res
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let body: serde_json::Value = res.fhir().await;
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(spine_code(&body), "ACCESS_DENIED");
}

#[tokio::test]
async fn a_request_without_a_token_is_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    assert_401(&app, None).await;
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let app = TestApp::spawn().await;
    let mut req = token_request(Role::Operations, "X26");
    req.ttl_seconds = -120; // beyond the 60 s leeway
    assert_401(&app, Some(&app.token_for(&req))).await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_401() {
    let app = TestApp::spawn().await;
    let req = token_request(Role::Operations, "X26");
    let forged = cpis::auth::token::issue(
        &req,
        cpis::auth::jwt::JwtAlgorithm::HS256,
        b"not-the-server-secret",
        app.config.jwt_issuer.as_deref(),
        "cpis",
    )
    .unwrap();
    assert_401(&app, Some(&forged)).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_401() {
    let app = TestApp::spawn().await;
    let exp = chrono::Utc::now().timestamp() + 300;
    let claims = json!({"sub": "x", "role": "operations", "exp": exp, "iss": app.config.jwt_issuer, "aud": "cpis"});
    let token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    assert_401(&app, Some(&token)).await;
}

#[tokio::test]
async fn a_token_naming_another_algorithm_is_401() {
    let app = TestApp::spawn().await;
    // A genuine HS512 signature with the right secret: still rejected, the algorithm is pinned.
    let exp = chrono::Utc::now().timestamp() + 300;
    let claims = json!({"sub": "x", "role": "operations", "exp": exp, "iss": app.config.jwt_issuer, "aud": "cpis"});
    let cpis::auth::jwt::KeyConfig::Secret(secret) = app.config.effective_key() else {
        unreachable!()
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_401(&app, Some(&token)).await;
}

#[tokio::test]
async fn wrong_issuer_or_audience_is_401() {
    let app = TestApp::spawn().await;
    let req = token_request(Role::Operations, "X26");
    let cpis::auth::jwt::KeyConfig::Secret(secret) = app.config.effective_key() else {
        unreachable!()
    };
    let alg = cpis::auth::jwt::JwtAlgorithm::HS256;
    let wrong_iss = cpis::auth::token::issue(
        &req,
        alg,
        secret.as_bytes(),
        Some("https://evil.example"),
        "cpis",
    )
    .unwrap();
    let wrong_aud = cpis::auth::token::issue(
        &req,
        alg,
        secret.as_bytes(),
        app.config.jwt_issuer.as_deref(),
        "other-service",
    )
    .unwrap();
    assert_401(&app, Some(&wrong_iss)).await;
    assert_401(&app, Some(&wrong_aud)).await;
}

#[tokio::test]
async fn a_health_care_token_without_the_claims_its_role_needs_is_401() {
    let app = TestApp::spawn().await;
    let mut req = token_request(Role::HealthCare, HOSPITAL);
    req.name = None;
    assert_401(&app, Some(&app.token_for(&req))).await;
    let mut req = token_request(Role::SocialCare, LA_A);
    req.org = None;
    assert_401(&app, Some(&app.token_for(&req))).await;
}

#[tokio::test]
async fn health_care_may_not_write_plans() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.health(),
            &plan_json("9449306753", LA_A, "P-1"),
        )
        .await;
    expect_outcome(res, 403, "ACCESS_DENIED").await;
    assert_eq!(app.count_rows("resources"), 1, "only the LA exists");
}

#[tokio::test]
async fn operations_may_not_write_plans_and_social_care_may_not_register_las() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.ops(),
            &plan_json("9449306753", LA_A, "P-1"),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .post("/Organization", &app.social(LA_A), &la_json(LA_B))
        .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn an_la_cannot_create_a_plan_for_another_la() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.social(LA_B),
            &plan_json("9449306753", LA_A, "P-1"),
        )
        .await;
    expect_outcome(res, 403, "ACCESS_DENIED").await;
}

#[tokio::test]
async fn an_la_cannot_read_update_or_delete_another_las_plan_or_flag() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap();
    let other = app.social(LA_B);
    assert_eq!(
        app.get(&format!("/EpisodeOfCare/{id}"), &other)
            .await
            .status(),
        403
    );
    assert_eq!(app.get(&format!("/Flag/{id}"), &other).await.status(), 403);
    assert_eq!(
        app.get(&format!("/EpisodeOfCare/{id}/_history"), &other)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get(&format!("/EpisodeOfCare/{id}/_history/1"), &other)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.put(&format!("/EpisodeOfCare/{id}"), &other, &plan)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.delete(&format!("/EpisodeOfCare/{id}"), &other)
            .await
            .status(),
        403
    );
    // Its own LA still sees it, unchanged.
    let own = app
        .get(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A))
        .await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.fhir().await["meta"]["versionId"], "1");
}

#[tokio::test]
async fn an_las_searches_return_only_its_own_plans() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json("9449306753", LA_A, "P-A")).await;
    app.create_plan(&plan_json("9449306753", LA_B, "P-B")).await;
    for path in [
        "/EpisodeOfCare",
        "/Flag",
        "/Flag?patient:identifier=9449306753",
    ] {
        let bundle: serde_json::Value = app.get(path, &app.social(LA_B)).await.fhir().await;
        assert_eq!(bundle["total"], 1, "{path}");
    }
    let all: serde_json::Value = app.get("/EpisodeOfCare", &app.ops()).await.fhir().await;
    assert_eq!(all["total"], 2);
}

/// A caller who may not write learns nothing from validation: 403 before the body is read.
#[tokio::test]
async fn the_role_is_checked_before_the_body_is_validated() {
    let app = TestApp::spawn().await;
    let la = app.create_la(LA_A).await;
    let invalid_plan = serde_json::json!({"resourceType": "EpisodeOfCare"});
    for token in [app.health(), app.ops()] {
        assert_eq!(
            app.post("/EpisodeOfCare", &token, &invalid_plan)
                .await
                .status(),
            403
        );
        let path = format!("/EpisodeOfCare?identifier={}|P-1", plan_system(LA_A));
        assert_eq!(app.put(&path, &token, &invalid_plan).await.status(), 403);
    }
    let invalid_org = serde_json::json!({"resourceType": "Organization", "id": la["id"]});
    assert_eq!(
        app.post("/Organization", &app.social(LA_A), &invalid_org)
            .await
            .status(),
        403
    );
    let path = format!("/Organization/{}", la["id"].as_str().unwrap());
    assert_eq!(
        app.put(&path, &app.health(), &invalid_org).await.status(),
        403
    );
}

/// A token with these claims, signed with the test secret.
fn signed(app: &TestApp, claims: &serde_json::Value) -> String {
    let cpis::auth::jwt::KeyConfig::Secret(secret) = app.config.effective_key() else {
        unreachable!()
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn an_audience_may_be_a_list_that_contains_ours() {
    let app = TestApp::spawn().await;
    let claims = |aud: serde_json::Value| {
        json!({
            "sub": "u1", "role": "operations", "org": "X26",
            "exp": chrono::Utc::now().timestamp() + 300,
            "iss": app.config.jwt_issuer, "aud": aud
        })
    };
    let listed = signed(&app, &claims(json!(["https://other.example", "cpis"])));
    let res = app.get("/Organization", &listed).await;
    assert_eq!(res.status(), 200);
    let not_listed = signed(&app, &claims(json!(["https://other.example"])));
    assert_401(&app, Some(&not_listed)).await;
    let single = signed(&app, &claims(json!("cpis")));
    assert_eq!(app.get("/Organization", &single).await.status(), 200);
}

#[test]
fn a_short_hs256_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cpis"))
        .arg("serve")
        .env_clear()
        .env(
            "CPIS_DATABASE_URL",
            format!("sqlite://{}/c.db", dir.path().display()),
        )
        .env("CPIS_BIND", "127.0.0.1:0")
        .env("CPIS_JWT_SECRET", "only-twenty-six-bytes-long")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a configuration error");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("CPIS_JWT_SECRET") && said.contains("at least 32 bytes"),
        "{said}"
    );
}
