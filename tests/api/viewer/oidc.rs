//! OpenID Connect sign-in to the viewer (SPEC §10, issue #27), against the provider of
//! `oidc_provider`: the authorization request (code, PKCE S256, state, nonce, scopes), both
//! client authentications, a wrong or replayed state, another nonce, a bad verifier or client,
//! and the ID token's claims mapped as an API token's (NHS CIS2's selected role).

use std::collections::HashMap;

use cpis::auth::claims::{parse_role_map, ClaimMap, ClaimPath};
use parking_lot::Mutex;
use reqwest::header::SET_COOKIE;
use reqwest::redirect;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::oidc_provider::*;
use super::*;

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
