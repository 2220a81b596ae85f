//! The viewer's pages (SPEC §10): sign-in, Find a child and the result with SPEC §10's labels,
//! current and ended plans, the error summary, a child without a plan, the 404, 405 and 503
//! pages.

use std::time::Duration;

use serde_json::json;

use super::*;

#[tokio::test]
async fn the_viewer_is_not_served_unless_configured() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(format!("{}/viewer", app.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// The session cookie's flags, and the session stored under the token's hash only.
fn assert_session_cookie_and_row(app: &TestApp, signed_in: &reqwest::Response) {
    let cookies = set_cookies(signed_in);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("cpis_viewer="))
        .expect("the session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/viewer"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain http on loopback: {session}"
    );
    assert_eq!(app.count_rows("viewer_sessions"), 1);
    // Only the token's hash is stored.
    let token = session
        .trim_start_matches("cpis_viewer=")
        .split(';')
        .next()
        .unwrap();
    assert_eq!(
        app.count_where("viewer_sessions", &format!("token_hash = '{token}'")),
        0
    );
}

/// The stylesheet cached for a year, unknown assets and pages 404, other methods 405.
async fn assert_assets_and_unknown_pages(browser: &Browser) {
    let css = browser
        .get("/viewer/assets/nhsuk-frontend-10.6.1.min.css")
        .await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=31536000"));
    assert_eq!(browser.get("/viewer/assets/other.css").await.status(), 404);
    let missing = browser.get("/viewer/nothing-here").await;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("Page not found"));
    let wrong_method = browser
        .client
        .put(browser.url("/viewer"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test]
async fn sign_in_find_and_result_pages_carry_the_spec_labels_headers_and_cookies() {
    let (app, _) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let browser = Browser::new(&app);

    let first = browser.get("/viewer").await;
    assert_eq!(first.status(), 303);
    assert_eq!(location(&first), "/viewer/sign-in");

    let form = browser.get("/viewer/sign-in").await;
    assert_eq!(form.status(), 200);
    assert!(form.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let form_cookie = set_cookies(&form).join("\n");
    let html = form.text().await.unwrap();
    assert_shows(
        &html,
        &[
            ">Name</label>",
            ">Organisation ODS code</label>",
            ">Job role</label>",
            ">Sign in</button>",
        ],
    );
    assert!(!html.contains("<script"), "no script at all");
    assert!(form_cookie.contains("HttpOnly") && form_cookie.contains("SameSite=Lax"));
    assert!(form_cookie.contains("Path=/viewer"));

    let signed_in = browser
        .sign_in_as("Jane Smith", "rj1", "Staff Nurse", "health-care")
        .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), "/viewer");
    assert_session_cookie_and_row(&app, &signed_in);

    let find = browser.get("/viewer").await;
    assert_eq!(find.status(), 200);
    let html = find.text().await.unwrap();
    assert_shows(
        &html,
        &[
            ">NHS number</label>",
            "Why is the patient being seen today?",
            ">An emergency or unscheduled visit</label>",
            ">A planned or routine appointment</label>",
            ">Search</button>",
            ">Sign out</button>",
        ],
    );
    assert!(!html.contains("checked"), "no answer chosen by default");

    let result = browser.look_up(CHILD, "unscheduled").await;
    assert_shows(
        &result,
        &[
            "Child protection plan",
            "5 January 2026",
            "Local authority E09000030 (E09000030)",
            "Office hours number",
            "Emergency duty number",
            "href=\"tel:02070000001\"",
            "href=\"tel:02070000999\"",
            "Current plans",
            "does not replace phoning them",
            "The responsible local authority has been told",
            "Previous views",
            "Jane Smith",
            "Staff Nurse",
            "RJ1",
            "9 September 2026 at 14:05",
            "944 930 6753",
        ],
    );
    assert!(!result.contains("Ended plans"));
    assert_eq!(app.count_rows("audit_events"), 1);

    // Refreshing the result records nothing more.
    let again = browser.get("/viewer/result").await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.count_rows("audit_events"), 1);

    assert_assets_and_unknown_pages(&browser).await;
}

#[tokio::test]
async fn ended_plans_are_shown_apart_from_current_ones() {
    let (app, _) = viewer_app(|_| {}).await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    let mut ended = plan_json(CHILD, LA_B, "P-B1");
    ended["type"] = json!([{"coding": [{"system": SNOMED, "code": LAC}]}]);
    ended["period"] = json!({"start": "2025-03-01", "end": "2026-02-28"});
    app.create_plan(&ended).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(CHILD, "unscheduled").await;
    let current = result.find("Current plans").unwrap();
    let ended_at = result.find("Ended plans").expect("an ended section");
    let lac = result.find("Looked after child").unwrap();
    let cpp = result.find("Child protection plan").unwrap();
    assert!(
        current < cpp && cpp < ended_at && ended_at < lac,
        "{result}"
    );
    assert!(result.contains("28 February 2026"));
    assert!(result.contains("Local authority E08000025 (E08000025)"));
}

#[tokio::test]
async fn an_invalid_number_or_no_answer_is_an_error_summary_and_records_nothing() {
    let (app, _) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    for (nhs, visit, message) in [
        (
            "9449306754",
            "unscheduled",
            "Enter a valid 10 digit NHS number",
        ),
        (CHILD, "", "Select why the patient is being seen today"),
        (
            CHILD,
            "sometimes",
            "Select why the patient is being seen today",
        ),
        (
            "<b>x</b>",
            "unscheduled",
            "Enter a valid 10 digit NHS number",
        ),
    ] {
        let res = browser.search(nhs, visit).await;
        assert_eq!(res.status(), 400, "{nhs} {visit}");
        let html = res.text().await.unwrap();
        assert!(html.contains("nhsuk-error-summary"), "{html}");
        assert!(html.contains("There is a problem"));
        assert!(html.contains(message), "{message}");
        assert!(!html.contains("<b>x</b>"));
    }
    assert_eq!(app.count_rows("audit_events"), 0);
    assert_eq!(app.count_rows("notification_outbox"), 0);
}

#[tokio::test]
async fn a_child_without_a_plan_is_no_information_and_nothing_recorded() {
    let (app, _) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(NO_PLAN_CHILD, "unscheduled").await;
    assert!(result.contains("No child protection information found"));
    assert!(!result.contains("has been told"));
    assert_eq!(app.count_rows("audit_events"), 0);
    assert_eq!(app.count_rows("notification_outbox"), 0);
}

#[tokio::test]
async fn a_database_outage_is_a_503_page() {
    let (app, _) = viewer_app(|c| {
        c.db_pool_size = 2;
        c.db_timeout = Duration::from_millis(200);
    })
    .await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let held: Vec<_> = (0..2).map(|_| app.pool.get().unwrap()).collect();
    let res = browser.get("/viewer").await;
    assert_eq!(res.status(), 503);
    let html = res.text().await.unwrap();
    assert!(html.contains("the service is unavailable"), "{html}");
    assert!(!html.contains("pool"), "no detail: {html}");
    drop(held);
    assert_eq!(browser.get("/viewer").await.status(), 200);
}

#[tokio::test]
async fn each_plan_type_is_named_as_spec_10_names_it() {
    let (app, _) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let mut looked_after = plan_json(OTHER_CHILD, LA_B, "P-B1");
    looked_after["type"][0]["coding"][0]["code"] = json!(LAC);
    app.create_plan(&looked_after).await;
    // An unborn child's plan is held against the mother's NHS number.
    let mut unborn = plan_json(NO_PLAN_CHILD, LA_B, "U-1");
    unborn["type"][0]["coding"][0]["code"] = json!(UCPP);
    app.create_plan(&unborn).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    for (nhs, kinds) in [
        (CHILD, vec!["Child protection plan"]),
        (
            OTHER_CHILD,
            vec!["Child protection plan", "Looked after child"],
        ),
        (NO_PLAN_CHILD, vec!["Unborn child protection plan"]),
    ] {
        let result = browser.look_up(nhs, "scheduled").await;
        for kind in kinds {
            assert!(
                result.contains(&format!(">{kind}</h3>")),
                "{kind}: {result}"
            );
        }
    }
}
