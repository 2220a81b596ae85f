//! Sessions (SPEC §10): sign-out ends one for good, 15 idle minutes or 8 hours end it, only
//! health care gets one, and an issuer without a client signs nobody in.

use super::*;

#[tokio::test]
async fn sign_out_ends_the_session_for_good() {
    let (app, _) = viewer_app(|_| {}).await;
    let browser = Browser::new(&app);
    let signed_in = browser
        .sign_in_as("Jane Smith", "RJ1", "Staff Nurse", "health-care")
        .await;
    let cookie = set_cookies(&signed_in)
        .into_iter()
        .find(|c| c.starts_with("cpis_viewer="))
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let token = browser.csrf().await;
    let out = browser.post("/viewer/sign-out", &[("csrf", &token)]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "/viewer/signed-out");
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("cpis_viewer=;") && c.contains("Max-Age=0")));
    assert_eq!(app.count_rows("viewer_sessions"), 0);
    let page = browser.get("/viewer/signed-out").await;
    assert!(page.text().await.unwrap().contains("You have signed out"));
    // The old cookie, replayed, is nobody.
    let replayed = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
        .get(browser.url("/viewer"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 303);
    assert_eq!(location(&replayed), "/viewer/sign-in");
}

#[tokio::test]
async fn a_session_ends_after_15_idle_minutes_and_after_8_hours() {
    let (app, clock) = viewer_app(|_| {}).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    clock.set(T0 + 14 * MINUTE);
    assert_eq!(browser.get("/viewer").await.status(), 200);
    clock.set(T0 + 28 * MINUTE);
    assert_eq!(
        browser.get("/viewer").await.status(),
        200,
        "idle 14 minutes"
    );
    clock.set(T0 + 43 * MINUTE);
    let idle = browser.get("/viewer").await;
    assert_eq!(idle.status(), 303, "idle 15 minutes");
    assert_eq!(location(&idle), "/viewer/sign-in");
    assert_eq!(
        app.count_rows("viewer_sessions"),
        0,
        "the expired session is deleted"
    );

    let start = T0 + 60 * MINUTE;
    clock.set(start);
    browser.sign_in().await;
    let mut at = start;
    while at + 10 * MINUTE < start + 8 * 60 * MINUTE {
        at += 10 * MINUTE;
        clock.set(at);
        assert_eq!(browser.get("/viewer").await.status(), 200);
    }
    clock.set(start + 8 * 60 * MINUTE);
    assert_eq!(
        browser.get("/viewer").await.status(),
        303,
        "8 hours, however busy"
    );

    // Expired sessions left behind are purged at the next sign-in.
    let other = Browser::new(&app);
    other.sign_in().await;
    clock.set(start + 9 * 60 * MINUTE);
    Browser::new(&app).sign_in().await;
    assert_eq!(app.count_rows("viewer_sessions"), 1);
}

#[tokio::test]
async fn only_health_care_may_sign_in() {
    let (app, _) = viewer_app(|_| {}).await;
    for role in ["social-care", "operations", "governance"] {
        let browser = Browser::new(&app);
        let res = browser
            .sign_in_as("Sam Jones", "E09000030", "Social Worker", role)
            .await;
        assert_eq!(res.status(), 403, "{role}");
        let html = res.text().await.unwrap();
        assert!(html.contains("You cannot use this service"), "{html}");
        assert_eq!(browser.get("/viewer").await.status(), 303);
    }
    assert_eq!(app.count_rows("viewer_sessions"), 0);
}

#[tokio::test]
async fn an_oidc_issuer_replaces_the_sandbox_form_and_signs_nobody_in() {
    let (app, _) = viewer_app(|c| {
        c.viewer.oidc_issuer = Some("https://idp.example.nhs.uk".into());
    })
    .await;
    let browser = Browser::new(&app);
    let page = browser.get("/viewer/sign-in").await;
    assert_eq!(page.status(), 501);
    let html = page.text().await.unwrap();
    assert!(html.contains("not yet available in this build"), "{html}");
    assert!(!html.contains(">Sign in</button>"));
    let post = browser
        .post(
            "/viewer/sign-in",
            &[("name", "Jane"), ("ods", "RJ1"), ("job_role", "Nurse")],
        )
        .await;
    assert_eq!(post.status(), 501);
    assert_eq!(app.count_rows("viewer_sessions"), 0);
}
