//! Safe by construction (SPEC §10): everything escaped, every form's token, cookie flags, a
//! result only in its own session.

use cpis::auth::Role;
use serde_json::json;

use super::*;

#[tokio::test]
async fn hostile_names_roles_organisations_and_la_details_are_escaped() {
    let (app, _) = viewer_app(|_| {}).await;
    let mut la = la_json(LA_A);
    la["name"] = json!(HOSTILE);
    la["telecom"][0]["value"] = json!(format!("0207 {HOSTILE}"));
    la["telecom"][1]["value"] = json!(format!("0208 {HOSTILE}"));
    let created = app.post("/Organization", &app.ops(), &la).await;
    assert_eq!(created.status(), 201);
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    // Another clinician's API lookup, with hostile claims, shows in Previous views.
    let mut other = token_request(Role::HealthCare, "RXH");
    other.sub = "hostile-clinician".into();
    other.name = Some(HOSTILE.into());
    other.job_role = Some(HOSTILE.into());
    other.org_name = Some(HOSTILE.into());
    let token = app.token_for(&other);
    let res = app
        .get(&format!("/Flag?patient:identifier={CHILD}"), &token)
        .await;
    assert_eq!(res.status(), 200);

    let browser = Browser::new(&app);
    let signed_in = browser
        .sign_in_as(HOSTILE, "RJ1", HOSTILE, "health-care")
        .await;
    assert_eq!(signed_in.status(), 303);
    let find = browser.get("/viewer").await.text().await.unwrap();
    let result = browser.look_up(CHILD, "unscheduled").await;
    for html in [&find, &result] {
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("'x'"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
    }
    // Both views (the hostile clinician's and this one) are in Previous views, escaped.
    let views = &result[result.find("Previous views").unwrap()..];
    assert_eq!(views.matches("&#60;script&#62;").count(), 5, "{views}");
    assert!(result.contains("href=\"tel:0207\""), "{result}");
    // A hostile sign-in form is refused, escaped, too.
    let fresh = Browser::new(&app);
    let bad = fresh
        .sign_in_as(HOSTILE, HOSTILE, "Nurse", "health-care")
        .await;
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    assert!(!html.contains("<script>") && html.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn a_post_without_its_form_token_is_refused_and_does_nothing() {
    let (app, _) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    // Sign-in: without the token, or with one that is not its cookie's.
    let browser = Browser::new(&app);
    let _ = browser.get("/viewer/sign-in").await;
    for token in [None, Some("0".repeat(64))] {
        let mut form = vec![
            ("name", "Jane Smith".to_string()),
            ("ods", "RJ1".into()),
            ("job_role", "Staff Nurse".into()),
        ];
        if let Some(t) = &token {
            form.push(("csrf", t.clone()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = browser.post("/viewer/sign-in", &form).await;
        assert_eq!(res.status(), 403);
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("You cannot use this service"));
    }
    assert_eq!(app.count_rows("viewer_sessions"), 0);

    browser.sign_in().await;
    for token in ["", "wrong"] {
        let res = browser
            .post(
                "/viewer",
                &[
                    ("csrf", token),
                    ("nhs_number", CHILD),
                    ("visit", "unscheduled"),
                ],
            )
            .await;
        assert_eq!(res.status(), 403);
    }
    let res = browser
        .post(
            "/viewer",
            &[("nhs_number", CHILD), ("visit", "unscheduled")],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.count_rows("audit_events"), 0);
    let res = browser.post("/viewer/sign-out", &[("csrf", "wrong")]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.count_rows("viewer_sessions"), 1, "still signed in");
    assert_eq!(browser.get("/viewer").await.status(), 200);
}

#[tokio::test]
async fn a_result_is_shown_only_in_its_own_session() {
    let (app, _) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    browser.look_up(CHILD, "unscheduled").await;
    let other = Browser::new(&app);
    other.sign_in().await;
    let res = other.get("/viewer/result").await;
    assert_eq!(res.status(), 303, "no lookup in this session");
    assert_eq!(location(&res), "/viewer");
}

#[tokio::test]
async fn cookies_are_secure_when_served_over_https() {
    let (app, _) = viewer_app(|c| {
        c.base_url = Some("https://cpis.example.org/FHIR/R4".into());
    })
    .await;
    let browser = Browser::new(&app);
    let form = browser.get("/viewer/sign-in").await;
    let cookie = set_cookies(&form).join("\n");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn no_framing_unless_the_epr_origins_are_listed() {
    let header = |res: &reqwest::Response, name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (app, _) = viewer_app(|_| {}).await;
    let res = Browser::new(&app).get("/viewer/sign-in").await;
    let csp = header(&res, "content-security-policy").unwrap();
    assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&res, "x-frame-options").as_deref(), Some("DENY"));

    let (app, _) = viewer_app(|c| {
        c.viewer.frame_ancestors = vec!["https://epr.example.nhs.uk".into()];
    })
    .await;
    let res = Browser::new(&app).get("/viewer/sign-in").await;
    let csp = header(&res, "content-security-policy").unwrap();
    assert!(
        csp.ends_with("frame-ancestors https://epr.example.nhs.uk"),
        "{csp}"
    );
    assert_eq!(header(&res, "x-frame-options"), None, "the CSP decides");
}

#[tokio::test]
async fn links_redirects_and_cookies_are_under_the_root_path() {
    // Behind a proxy that serves the server under /cpis: {root} is /cpis.
    let (app, _) = viewer_app(|c| {
        c.base_url = Some("http://127.0.0.1:8080/cpis/FHIR/R4".into());
    })
    .await;
    let browser = Browser::new(&app);
    let first = browser.get("/viewer").await;
    assert_eq!(location(&first), "/cpis/viewer/sign-in");
    let form = browser.get("/viewer/sign-in").await;
    let cookie = set_cookies(&form).join("\n");
    assert!(cookie.contains("Path=/cpis/viewer;"), "{cookie}");
    let html = form.text().await.unwrap();
    assert_shows(
        &html,
        &[
            "action=\"/cpis/viewer/sign-in\"",
            "href=\"/cpis/viewer/assets/",
        ],
    );
}
