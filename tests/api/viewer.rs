//! The clinician viewer (SPEC §10, issue #27): its pages, labels, headers, sessions and form
//! tokens, escaping, and its lookup, which is recorded and notified exactly as the API's.

use std::time::Duration;

use cpis::auth::Role;
use cpis::clock::Clock;
use cpis::viewer::ViewerConfig;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::receiver::Receiver;

const CHILD: &str = "9449306753";
const OTHER_CHILD: &str = "9000000009";
const NO_PLAN_CHILD: &str = "9912003888";
/// 14:05 BST on 9 September 2026.
const T0: i64 = 1_788_959_100_000;
const MINUTE: i64 = 60 * 1000;
const HOSTILE: &str = "<script>alert('x')</script>\"&";

/// A viewer app (sandbox sign-in) on a clock the test moves, dispatching only when asked.
async fn viewer_app(customise: impl FnOnce(&mut cpis::config::Config)) -> (TestApp, Clock) {
    let clock = Clock::fixed(T0);
    let app = TestApp::spawn_with(|c| {
        c.viewer = ViewerConfig::sandbox();
        c.dispatcher = false;
        c.clock = clock.clone();
        customise(c);
    })
    .await;
    (app, clock)
}

/// A browser: cookies kept, redirects not followed (each is checked).
struct Browser {
    client: reqwest::Client,
    root: String,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            root: app.address.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let res = self.client.get(self.url(path)).send().await.unwrap();
        assert_viewer_headers(res.headers(), path);
        res
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res = self
            .client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_viewer_headers(res.headers(), path);
        no_personal_data_in_location(&res);
        res
    }

    /// The sandbox form, filled in and sent with its form token.
    async fn sign_in_as(
        &self,
        name: &str,
        ods: &str,
        job_role: &str,
        role: &str,
    ) -> reqwest::Response {
        let form = self.get("/viewer/sign-in").await;
        assert_eq!(form.status(), 200);
        let token = csrf_of(&form.text().await.unwrap());
        self.post(
            "/viewer/sign-in",
            &[
                ("csrf", &token),
                ("name", name),
                ("ods", ods),
                ("job_role", job_role),
                ("role", role),
            ],
        )
        .await
    }

    async fn sign_in(&self) {
        let res = self
            .sign_in_as("Jane Smith", "RJ1", "Staff Nurse", "health-care")
            .await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/viewer");
    }

    /// The session's form token (from Find a child).
    async fn csrf(&self) -> String {
        let find = self.get("/viewer").await;
        assert_eq!(find.status(), 200);
        csrf_of(&find.text().await.unwrap())
    }

    /// Searches from Find a child; returns the answer to the POST.
    async fn search(&self, nhs: &str, visit: &str) -> reqwest::Response {
        let token = self.csrf().await;
        self.post(
            "/viewer",
            &[("csrf", &token), ("nhs_number", nhs), ("visit", visit)],
        )
        .await
    }

    /// Searches and follows the redirect to the result; returns its HTML.
    async fn look_up(&self, nhs: &str, visit: &str) -> String {
        let res = self.search(nhs, visit).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        assert_eq!(location(&res), "/viewer/result");
        let result = self.get("/viewer/result").await;
        assert_eq!(result.status(), 200);
        result.text().await.unwrap()
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn no_personal_data_in_location(res: &reqwest::Response) {
    let location = location(res);
    for personal in [CHILD, OTHER_CHILD, NO_PLAN_CHILD, "944", "Jane", "RJ1"] {
        assert!(!location.contains(personal), "{location}");
    }
    assert!(!res.url().as_str().contains(CHILD));
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form token") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// SPEC §10's headers, on every viewer response.
fn assert_viewer_headers(headers: &HeaderMap, path: &str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no {name}"))
            .to_string()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    assert!(!csp.contains("script-src"), "{path}: {csp}");
    assert!(csp.contains("form-action 'self'"), "{path}: {csp}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    if !path.starts_with("/viewer/assets/") {
        assert_eq!(header("cache-control"), "no-store", "{path}");
    }
}

/// Fails unless the page shows each of `shown`.
fn assert_shows(html: &str, shown: &[&str]) {
    for text in shown {
        assert!(html.contains(text), "{text}:\n{html}");
    }
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

async fn setup_children(app: &TestApp) {
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    app.create_plan(&plan_json(OTHER_CHILD, LA_A, "P-A2")).await;
}

async fn subscribe(app: &TestApp, la: &str, url: &str) {
    let res = app
        .post("/Subscription", &app.social(la), &subscription_json(url))
        .await;
    assert_eq!(res.status(), 201);
}

/// The child's AuditEvents as operations sees them (every access, newest first).
async fn audit_events(app: &TestApp, nhs: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/AuditEvent?patient:identifier={nhs}"), &app.ops())
        .await;
    assert_eq!(res.status(), 200);
    let bundle = body(res).await;
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect()
}

#[tokio::test]
async fn the_viewer_is_not_served_unless_configured() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(format!("{}/viewer", app.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
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
    let cookies = set_cookies(&signed_in);
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

/// An AuditEvent without what differs between two accesses of two children: its id and
/// instant, the child, and the ids of the child's Flags.
fn comparable(event: &Value, nhs: &str) -> Value {
    let mut event = event.clone();
    let object = event.as_object_mut().unwrap();
    object.remove("id");
    object.remove("recorded");
    object
        .get_mut("meta")
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove("lastUpdated");
    let text = event.to_string().replace(nhs, "CHILD");
    let mut event: Value = serde_json::from_str(&text).unwrap();
    for entity in event["entity"].as_array_mut().unwrap() {
        if let Some(reference) = entity.pointer_mut("/what/reference") {
            let kind = reference.as_str().unwrap().split('/').next().unwrap();
            *reference = json!(format!("{kind}/PLAN"));
        }
    }
    event
}

#[tokio::test]
async fn a_viewer_lookup_is_recorded_and_notified_as_the_api_lookup_is() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let receiver = Receiver::start();
    subscribe(&app, LA_A, &receiver.url).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    browser.look_up(OTHER_CHILD, "unscheduled").await;
    let viewer_events = audit_events(&app, OTHER_CHILD).await;
    assert_eq!(viewer_events.len(), 1);
    let viewer_event = &viewer_events[0];
    // The same clinician through the API, with the same answer.
    let mut same = token_request(Role::HealthCare, "RJ1");
    same.sub = viewer_event["agent"][0]["who"]["identifier"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    same.name = Some("Jane Smith".into());
    same.org_name = None;
    same.job_role = Some("Staff Nurse".into());
    let token = app.token_for(&same);
    clock.set(T0 + 1000);
    let res = app
        .send(
            reqwest::Method::GET,
            &format!("/Flag?patient:identifier={CHILD}&_include=Flag:author"),
            &token,
            None,
            &[("IsUnscheduledAccessEvent", "true")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let api_events = audit_events(&app, CHILD).await;
    assert_eq!(api_events.len(), 1);
    assert_eq!(
        comparable(viewer_event, OTHER_CHILD),
        comparable(&api_events[0], CHILD)
    );
    assert_eq!(
        viewer_event["entity"][0]["detail"][0]["valueString"],
        "unscheduled"
    );

    clock.set(T0 + 5000);
    app.deliver_pending().await;
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), 2, "both notified");
    let of = |nhs: &str| {
        delivered
            .iter()
            .find(|d| d.body.to_string().contains(nhs))
            .unwrap()
            .clone()
    };
    let (viewer_note, api_note) = (of(OTHER_CHILD), of(CHILD));
    assert_eq!(
        comparable(&viewer_note.body, OTHER_CHILD),
        comparable(&api_note.body, CHILD)
    );
    let pattern = |d: &crate::receiver::Received| {
        d.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-cpis-attendance-pattern"))
    };
    assert_eq!(pattern(&viewer_note), pattern(&api_note));

    // A second view by the same person within 24 hours is collapsed as the API's would be.
    browser.look_up(OTHER_CHILD, "unscheduled").await;
    clock.set(T0 + 10_000);
    app.deliver_pending().await;
    assert_eq!(
        receiver.delivered().len(),
        2,
        "collapsed: not notified again"
    );
}

#[tokio::test]
async fn a_scheduled_visit_is_recorded_but_not_notified() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let receiver = Receiver::start();
    subscribe(&app, LA_A, &receiver.url).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(CHILD, "scheduled").await;
    assert!(result.contains("Child protection plan"));
    assert!(!result.contains("has been told"), "{result}");
    let events = audit_events(&app, CHILD).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["entity"][0]["detail"][0]["valueString"],
        "scheduled"
    );
    clock.set(T0 + 5000);
    assert_eq!(app.deliver_pending().await, 0);
    assert!(receiver.attempts().is_empty());
}

#[tokio::test]
async fn previous_views_list_the_unscheduled_views_newest_first_in_uk_time() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    for n in 1..=2 {
        clock.set(T0 + n as i64 * 60 * MINUTE);
        let res = app
            .get(
                &format!("/Flag?patient:identifier={CHILD}"),
                &clinician(&app, n),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    // A scheduled view is not a previous view.
    let res = app
        .send(
            reqwest::Method::GET,
            &format!("/Flag?patient:identifier={CHILD}"),
            &clinician(&app, 3),
            None,
            &[("IsUnscheduledAccessEvent", "false")],
        )
        .await;
    assert_eq!(res.status(), 200);
    clock.set(T0 + 3 * 60 * MINUTE);
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(CHILD, "unscheduled").await;
    let views = &result[result.find("Previous views").unwrap()..];
    let jane = views.find("Jane Smith").expect("this view");
    let second = views.find("Clinician 2").expect("clinician 2");
    let first = views.find("Clinician 1").expect("clinician 1");
    assert!(jane < second && second < first, "{views}");
    assert!(!views.contains("Clinician 3"), "{views}");
    assert!(views.contains("9 September 2026 at 17:05"), "{views}");
    assert!(views.contains("9 September 2026 at 15:05"), "{views}");
    assert!(views.contains("Test organisation (RJ1)"), "{views}");
}

#[tokio::test]
async fn the_attendance_summary_is_shown_when_it_is_a_pattern() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    for (n, org) in [(1, "RXH"), (2, "RJZ")] {
        clock.set(T0 + n as i64 * MINUTE);
        let mut req = token_request(Role::HealthCare, org);
        req.sub = format!("clinician-{n}");
        let res = app
            .get(
                &format!("/Flag?patient:identifier={CHILD}"),
                &app.token_for(&req),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(OTHER_CHILD, "unscheduled").await;
    assert!(!result.contains("Repeated attendance"));
    let result = browser.look_up(CHILD, "unscheduled").await;
    assert!(result.contains("Repeated attendance"), "{result}");
    assert!(result.contains("3 different unscheduled care settings in the last 30 days"));
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
