//! Rate limits (SPEC §10, `src/viewer/limits.rs`): sign-in attempts per user name and per
//! client address (at least 30 a minute per address), whichever way one signs in; EPR launches
//! per address; searches per session.

use super::*;

#[tokio::test]
async fn sign_in_is_rate_limited_per_name_and_per_address() {
    let (app, _) = viewer_app(|_| {}).await;
    let browser = Browser::new(&app);
    let form = browser.get("/viewer/sign-in").await;
    let token = csrf_of(&form.text().await.unwrap());
    let attempt = |name: String| {
        let token = token.clone();
        let browser = &browser;
        async move {
            browser
                .post(
                    "/viewer/sign-in",
                    &[
                        ("csrf", &token),
                        ("name", &name),
                        ("ods", "!"),
                        ("job_role", "Nurse"),
                    ],
                )
                .await
                .status()
        }
    };
    for _ in 0..10 {
        assert_eq!(attempt("Jane Smith".into()).await, 400);
    }
    assert_eq!(attempt("Jane Smith".into()).await, 429, "per name");
    // A ward behind one address: at least 30 a minute.
    for n in 0..30 {
        assert_eq!(attempt(format!("Nurse {n}")).await, 400);
    }
    let mut limited = false;
    for n in 30..80 {
        limited |= attempt(format!("Nurse {n}")).await == 429;
    }
    assert!(limited, "per address");
}

#[tokio::test]
async fn searches_are_limited_per_session_and_the_limit_may_be_set() {
    let (app, clock) = viewer_app(|_| {}).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    // Invalid searches count too (nothing is recorded for them either way).
    for _ in 0..20 {
        assert_eq!(
            browser.search("1234567890", "unscheduled").await.status(),
            400
        );
    }
    let limited = browser.search("1234567890", "unscheduled").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.text().await.unwrap().contains("Too many attempts"));
    let other = Browser::new(&app);
    other.sign_in().await;
    assert_eq!(
        other.search("1234567890", "unscheduled").await.status(),
        400,
        "per session"
    );
    clock.set(T0 + MINUTE);
    assert_eq!(
        browser.search("1234567890", "unscheduled").await.status(),
        400,
        "the next minute"
    );

    let (app, _) = viewer_app(|c| c.viewer.searches_per_minute = Some(3)).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    for _ in 0..3 {
        assert_eq!(
            browser.search("1234567890", "scheduled").await.status(),
            400
        );
    }
    assert_eq!(
        browser.search("1234567890", "scheduled").await.status(),
        429
    );
}

#[tokio::test]
async fn an_oidc_sign_in_is_limited_per_user_and_per_address() {
    use super::oidc_provider::*;
    use cpis::auth::claims::ClaimMap;

    let provider = provider(Mode::Basic).await;
    // A fixed clock (one window for the whole test), at the real time the ID tokens carry.
    let clock = Clock::fixed(chrono::Utc::now().timestamp_millis());
    let app = oidc_app_with(&provider, ClaimMap::default(), |c| c.clock = clock.clone()).await;
    // Each sign-in in a browser of its own (one signed in already is not sent to the provider).
    let sign_in = |claims: serde_json::Value| {
        let (app, provider) = (&app, &provider);
        async move {
            let client = browser();
            let started = start(app, &client, provider).await;
            let code = grant(provider, &started, &started.params["nonce"], claims);
            callback(app, &client, &code, &started.params["state"])
                .await
                .status()
        }
    };
    // Per user: the ID token's subject, 10 a minute.
    for _ in 0..10 {
        assert_eq!(sign_in(nurse()).await, 303);
    }
    assert_eq!(sign_in(nurse()).await, 429, "the same person an 11th time");
    assert_eq!(app.count_rows("viewer_sessions"), 10, "no session for it");
    let mut colleague = nurse();
    colleague["sub"] = serde_json::json!("cis2-555000222");
    assert_eq!(sign_in(colleague).await, 303, "another person");

    // Per address: 12 sign-ins started and answered so far; 60 of each a minute.
    let client = browser();
    for n in 12..60 {
        let res = callback(&app, &client, "a-code", &format!("not-a-state-{n}")).await;
        assert_eq!(res.status(), 400);
    }
    let res = callback(&app, &client, "a-code", "not-a-state").await;
    assert_eq!(res.status(), 429, "the provider's answers, per address");
    for _ in 12..60 {
        start(&app, &client, &provider).await;
    }
    let res = client
        .get(format!("{}/viewer/sign-in", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "sign-ins started, per address");
    assert_eq!(app.count_rows("viewer_sessions"), 11);
}

#[tokio::test]
async fn launches_are_limited_per_address() {
    let app = super::launch::rsa_app().await;
    let browser = Browser::new(&app);
    for _ in 0..60 {
        assert_eq!(browser.launch("not a token").await.status(), 400);
    }
    let good = super::launch::rs256(&super::launch::claims(&app));
    let limited = browser.launch(&good).await;
    assert_eq!(limited.status(), 429, "a good launch too, past the limit");
    assert!(set_cookies(&limited)
        .iter()
        .all(|c| !c.starts_with("cpis_viewer_launch=")));
    assert_eq!(app.count_rows("viewer_launches"), 0, "nothing kept");
}
