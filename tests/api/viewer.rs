//! The clinician viewer (SPEC §10, issue #27), over HTTP against the real application: what
//! the tests of each part share (a viewer app on a clock the test moves, a browser that keeps
//! cookies and checks SPEC §10's headers on every answer), and the parts:
//!
//! - `pages`: the pages, their labels, errors and the 503 page;
//! - `security`: escaping, form tokens, cookies, headers, framing, the root path;
//! - `sessions`: sign-out, expiry, who may sign in;
//! - `access`: a viewer lookup is the API's lookup (recorded, notified, collapsed), Previous
//!   views, the attendance summary;
//! - `limits`: rate limits on sign-in (both ways), launch and search;
//! - `launch`: launch from an EPR;
//! - `oidc`: OpenID Connect sign-in against `oidc_provider`, a provider run in the test.

use cpis::clock::Clock;
use cpis::viewer::ViewerConfig;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect;
use serde_json::Value;

use crate::helpers::*;

mod access;
mod launch;
mod limits;
mod oidc;
mod oidc_provider;
mod pages;
mod security;
mod sessions;

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

    /// Find a child's HTML (signed in).
    async fn find(&self) -> String {
        let res = self.get("/viewer").await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    /// An EPR's launch: its form posted to `/viewer/launch` (no form token: the signature is
    /// the proof).
    async fn launch(&self, token: &str) -> reqwest::Response {
        self.post("/viewer/launch", &[("launch", token)]).await
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
