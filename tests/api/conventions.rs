//! What real FHIR clients send (issue #14): CORS for browser apps, HEAD, `Allow` on 405, the
//! result parameters (`_summary`, `_elements`, `_total`, `_sort`, `_pretty`, `_id`), lenient
//! handling, `POST [type]/_search`, FHIR versions in media types, and compression.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

mod results;

const CHILD: &str = "9449306753";
const APP_ORIGIN: &str = "https://app.example.org";

async fn app_with_child() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-1")).await;
    app
}

fn lookup() -> String {
    format!("/Flag?patient:identifier={NHS}|{CHILD}")
}

/// A client that sends what the test says and checks nothing (compressed or empty bodies).
fn raw() -> reqwest::Client {
    reqwest::Client::new()
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Fails unless the comma-separated header `name` of `res` lists each of `expected`.
fn lists_all(res: &reqwest::Response, name: &str, expected: &[&str]) {
    let listed = header(res, name).unwrap_or_default().to_ascii_lowercase();
    for item in expected {
        assert!(listed.contains(item), "{item} in {name}: {listed}");
    }
}

/// `CapabilityStatement.rest.security.cors`.
async fn statement_says_cors(app: &TestApp) -> Value {
    let cs: Value = app.get("/metadata", &app.ops()).await.json().await.unwrap();
    cs["rest"][0]["security"]["cors"].clone()
}

#[tokio::test]
async fn without_configured_origins_no_cors_header_is_sent() {
    let app = TestApp::spawn().await;
    let res = raw()
        .request(Method::OPTIONS, app.url("/metadata"))
        .header("Origin", APP_ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "access-control-allow-origin").is_none());
    assert_eq!(statement_says_cors(&app).await, false);
}

#[tokio::test]
async fn a_configured_origin_is_answered_its_preflight_and_may_read_the_headers() {
    let app = TestApp::spawn_with(|c| c.cors_origins = vec![APP_ORIGIN.into()]).await;
    app.create_la(LA_A).await;
    let preflight = raw()
        .request(Method::OPTIONS, app.url("/Flag"))
        .header("Origin", APP_ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .header(
            "Access-Control-Request-Headers",
            "authorization,isunscheduledaccessevent,x-request-id",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    lists_all(
        &preflight,
        "access-control-allow-headers",
        &["authorization", "isunscheduledaccessevent", "x-request-id"],
    );
    let res = raw()
        .get(app.url("/Organization?identifier=E09000030"))
        .header("Origin", APP_ORIGIN)
        .bearer_auth(app.ops())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    lists_all(
        &res,
        "access-control-expose-headers",
        &[
            "etag",
            "location",
            "content-location",
            "last-modified",
            "x-request-id",
        ],
    );
    // Another origin is not let in.
    let other = raw()
        .get(app.url("/metadata"))
        .header("Origin", "https://elsewhere.example.com")
        .send()
        .await
        .unwrap();
    assert!(header(&other, "access-control-allow-origin").is_none());
    assert_eq!(statement_says_cors(&app).await, true);
}

#[tokio::test]
async fn head_answers_as_get_without_a_body_and_an_audited_read_stays_audited() {
    let app = app_with_child().await;
    for path in [format!("{}/_health", app.address), app.url("/metadata")] {
        let res = raw().head(&path).send().await.unwrap();
        assert_eq!(res.status(), 200, "HEAD {path}");
        assert!(res.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    let before = app.count_rows("audit_events");
    let res = raw()
        .head(app.url(&lookup()))
        .bearer_auth(app.health())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type")
        .unwrap()
        .starts_with("application/fhir+json"));
    assert!(res.bytes().await.unwrap().is_empty());
    assert_eq!(app.count_rows("audit_events"), before + 1);
    // HEAD needs what GET needs.
    let res = raw().head(app.url(&lookup())).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// Every path of `openapi.yaml`: a method it does not list is 405 with an `Allow` header that
/// lists exactly the methods the contract gives it (and HEAD with GET).
#[tokio::test]
async fn every_405_lists_what_its_path_allows_as_the_contract_does() {
    let app = TestApp::spawn().await;
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let contract: Value = serde_norway::from_str(&text).unwrap();
    let methods = ["get", "post", "put", "delete"];
    for (path, operations) in contract["paths"].as_object().unwrap() {
        let mut expected: BTreeSet<String> = methods
            .iter()
            .filter(|m| {
                operations.get(**m).is_some_and(|op| {
                    // An operation that never succeeds (documented as 405) is not served.
                    op["responses"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .any(|status| status.starts_with('2'))
                })
            })
            .map(|m| m.to_ascii_uppercase())
            .collect();
        if expected.contains("GET") {
            expected.insert("HEAD".into());
        }
        let concrete = path.replace("{id}", "x1").replace("{vid}", "1");
        let res = raw()
            .patch(format!("{}{concrete}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "PATCH {path}");
        let allow: BTreeSet<String> = header(&res, "allow")
            .unwrap_or_else(|| panic!("PATCH {path}: 405 without Allow"))
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        assert_eq!(allow, expected, "Allow of {path}");
    }
}

#[tokio::test]
async fn type_and_system_history_are_405_not_a_missing_id() {
    let app = TestApp::spawn().await;
    for path in ["/_history", "/EpisodeOfCare/_history", "/Flag/_history"] {
        let res = app.get(path, &app.ops()).await;
        assert_eq!(res.status(), 405, "{path}");
        assert_eq!(header(&res, "allow"), Some(""), "{path}");
    }
}

#[tokio::test]
async fn a_search_posted_as_a_form_is_the_same_audited_search() {
    let app = app_with_child().await;
    let before = app.count_rows("audit_events");
    let res = raw()
        .post(app.url("/Flag/_search?_include=Flag:author"))
        .bearer_auth(app.health())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("patient%3Aidentifier={NHS}%7C{CHILD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bundle: Value = res.json().await.unwrap();
    assert_eq!(bundle["total"], 1);
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 2);
    assert_eq!(app.count_rows("audit_events"), before + 1);
    // Health-care still cannot browse, whichever way it asks.
    let res = raw()
        .post(app.url("/Flag/_search"))
        .bearer_auth(app.health())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("status=active")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = raw()
        .post(app.url("/Flag/_search"))
        .bearer_auth(app.health())
        .header("Content-Type", "application/fhir+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}

#[tokio::test]
async fn a_create_with_search_parameters_is_400_and_creates_nothing() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let before = app.count_rows("resources");
    let res = app
        .post(
            "/EpisodeOfCare?identifier=x|1",
            &app.social(LA_A),
            &plan_json(CHILD, LA_A, "P-9"),
        )
        .await;
    expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
    assert_eq!(app.count_rows("resources"), before);
}

#[tokio::test]
async fn another_fhir_version_is_406_or_415() {
    let app = TestApp::spawn().await;
    let res = app
        .send(
            Method::GET,
            "/metadata",
            &app.ops(),
            None,
            &[("Accept", "application/fhir+json; fhirVersion=3.0")],
        )
        .await;
    assert_eq!(res.status(), 406);
    let res = app
        .send(
            Method::GET,
            "/metadata",
            &app.ops(),
            None,
            &[("Accept", "application/fhir+json; fhirVersion=4.0")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = raw()
        .post(app.url("/Organization"))
        .bearer_auth(app.ops())
        .header("Content-Type", "application/fhir+json; fhirVersion=5.0")
        .body(la_json(LA_A).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}

#[tokio::test]
async fn responses_are_compressed_when_the_client_asks() {
    let app = app_with_child().await;
    for encoding in ["gzip", "br"] {
        let res = raw()
            .get(app.url("/EpisodeOfCare"))
            .bearer_auth(app.ops())
            .header("Accept-Encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "content-encoding"), Some(encoding));
    }
    let plain = raw()
        .get(app.url("/EpisodeOfCare"))
        .bearer_auth(app.ops())
        .send()
        .await
        .unwrap();
    assert!(header(&plain, "content-encoding").is_none());
}

#[tokio::test]
async fn the_statement_names_parameters_as_fhir_does() {
    let app = TestApp::spawn().await;
    let cs: Value = app.get("/metadata", &app.ops()).await.json().await.unwrap();
    let flag = &cs["rest"][0]["resource"][2];
    assert_eq!(flag["type"], "Flag");
    let patient = flag["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "patient")
        .expect("patient");
    assert_eq!(patient["type"], "reference");
    assert!(patient["documentation"]
        .as_str()
        .unwrap()
        .contains(":identifier"));
    for resource in cs["rest"][0]["resource"].as_array().unwrap() {
        for p in resource["searchParam"].as_array().unwrap() {
            assert!(!p["name"].as_str().unwrap().contains(':'), "{p}");
        }
    }
}
