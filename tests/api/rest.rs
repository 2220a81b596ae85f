//! REST behaviour common to every endpoint: metadata, health, request ids, content types,
//! limits, $validate, and 503 (not a hang) when the database cannot be reached.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn metadata_needs_no_token_and_lists_what_works() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/metadata")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/fhir+json"));
    let cs: Value = res.fhir().await;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let types: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Organization",
            "EpisodeOfCare",
            "Flag",
            "AuditEvent",
            "Subscription",
            "Bundle"
        ]
    );
}

/// The CapabilityStatement is true: every search parameter and include it lists is accepted.
#[tokio::test]
async fn every_listed_search_parameter_and_include_works() {
    let app = TestApp::spawn().await;
    let cs: Value = app
        .client
        .get(app.url("/metadata"))
        .send()
        .await
        .unwrap()
        .fhir()
        .await;
    let sample = |ty: &str| match ty {
        "date" => "ge2026-01-01",
        "string" => "local",
        _ => "9449306753",
    };
    for resource in cs["rest"][0]["resource"].as_array().unwrap() {
        let ty = resource["type"].as_str().unwrap();
        for p in resource["searchParam"].as_array().unwrap() {
            // A reference parameter is searched by its target's identifier (FHIR names the
            // parameter; the statement says the modifier).
            let name = match p["type"].as_str().unwrap() {
                "reference" => format!("{}:identifier", p["name"].as_str().unwrap()),
                _ => p["name"].as_str().unwrap().to_string(),
            };
            let name = name.as_str();
            let value = if name == "status" {
                "active"
            } else if name == "attendance-pattern" {
                "true"
            } else if (ty, name) == ("Bundle", "type") {
                "batch-response"
            } else {
                sample(p["type"].as_str().unwrap())
            };
            let res = app.get(&format!("/{ty}?{name}={value}"), &app.ops()).await;
            assert_eq!(res.status(), 200, "{ty}?{name}={value}");
        }
        for include in resource["searchInclude"].as_array().into_iter().flatten() {
            let res = app
                .get(
                    &format!("/{ty}?_include={}", include.as_str().unwrap()),
                    &app.ops(),
                )
                .await;
            assert_eq!(res.status(), 200, "{ty} _include={include}");
        }
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        let server_written = ["Flag", "AuditEvent", "Bundle"].contains(&ty);
        assert_eq!(interactions.contains(&"create"), !server_written, "{ty}");
    }
}

/// ... and only what it lists is accepted: every other parameter is 400 not-supported, on
/// every searched type (the parsers and the statement read one table).
#[tokio::test]
async fn a_search_parameter_the_statement_does_not_list_is_rejected() {
    let app = TestApp::spawn().await;
    let cs: Value = app.get("/metadata", &app.ops()).await.fhir().await;
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let listed = |r: &Value| -> Vec<String> {
        r["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| match p["type"].as_str().unwrap() {
                "reference" => format!("{}:identifier", p["name"].as_str().unwrap()),
                _ => p["name"].as_str().unwrap().to_string(),
            })
            .collect()
    };
    // Every type's parameters, and common FHIR ones the server does not support.
    let mut candidates: Vec<String> = resources.iter().flat_map(listed).collect();
    candidates.extend(["_id", "_text", "_content", "_has", "patient", "subject"].map(String::from));
    candidates.sort();
    candidates.dedup();
    for resource in resources {
        let ty = resource["type"].as_str().unwrap();
        let own = listed(resource);
        for name in candidates.iter().filter(|c| !own.contains(c)) {
            let res = app.get(&format!("/{ty}?{name}=x"), &app.ops()).await;
            let outcome = expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
            assert_eq!(
                outcome["issue"][0]["code"], "not-supported",
                "{ty}?{name} is not listed, so it is not supported"
            );
        }
    }
}

#[tokio::test]
async fn health_is_200_while_the_database_answers() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(format!("{}/_health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/metadata"))
        .header("X-Request-ID", "req-123")
        .header("X-Correlation-ID", "corr-9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-123");
    assert_eq!(res.headers()["x-correlation-id"], "corr-9");
    let res = app
        .client
        .get(app.url("/Organization"))
        .header("TraceID", "trace-7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-request-id"], "trace-7");
    assert_eq!(res.headers()["traceid"], "trace-7");
    let res = app
        .client
        .get(app.url("/metadata"))
        .header("Accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 406);
    let generated = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok());
}

#[tokio::test]
async fn only_json_is_spoken() {
    let app = TestApp::spawn().await;
    let token = app.ops();
    let res = app
        .client
        .get(app.url("/Organization?_format=xml"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_outcome(res, 406, "UNSUPPORTED_SERVICE").await;
    let res = app
        .client
        .get(app.url("/Organization?_format=json"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .post(app.url("/Organization"))
        .bearer_auth(&token)
        .header("Content-Type", "application/xml")
        .body("<Organization/>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = app
        .client
        .post(app.url("/Organization"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(la_json(LA_A).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "application/json is accepted too");
}

#[tokio::test]
async fn an_oversized_body_is_413_and_writes_nothing() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 4096).await;
    let mut la = la_json(LA_A);
    la["name"] = json!("x".repeat(10_000));
    let res = app.post("/Organization", &app.ops(), &la).await;
    expect_outcome(res, 413, "FAILURE_TO_PROCESS_MESSAGE").await;
    assert_eq!(app.count_rows("resources"), 0);
}

#[tokio::test]
async fn unknown_endpoints_and_types_are_404_operation_outcomes() {
    let app = TestApp::spawn().await;
    for path in ["/Patient/1", "/Patient", "/Flag/1/2/3"] {
        let res = app.get(path, &app.ops()).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(res.fhir().await["resourceType"], "OperationOutcome");
    }
    let res = app
        .request(Method::PATCH, "/Organization", Some(&app.ops()), None)
        .await;
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn validate_reports_problems_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let before = app.snapshot();
    let res = app
        .post(
            "/EpisodeOfCare/$validate",
            &app.social(LA_A),
            &plan_json("9449306753", LA_A, "P-1"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let ok: Value = res.fhir().await;
    assert_eq!(ok["issue"][0]["severity"], "information");
    let mut bad = plan_json("9449306753", LA_A, "P-1");
    bad["diagnosis"] = json!([]);
    let res = app
        .post("/EpisodeOfCare/$validate", &app.social(LA_A), &bad)
        .await;
    assert_eq!(res.status(), 200);
    let outcome: Value = res.fhir().await;
    assert_eq!(outcome["issue"][0]["severity"], "error");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "EpisodeOfCare.diagnosis"
    );
    assert_eq!(app.snapshot(), before);
    assert_eq!(
        app.post("/EpisodeOfCare/$validate", &app.health(), &bad)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn when_no_database_connection_can_be_had_the_answer_is_503_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.db_pool_size = 1;
        c.db_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let token = app.ops();
    // Hold the only connection, as an outage or overload would.
    let held = app.pool.get().unwrap();
    let started = std::time::Instant::now();
    let res = app.get("/Organization", &token).await;
    assert_eq!(res.status(), 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "answered, not hung"
    );
    assert!(res.headers().contains_key("retry-after"));
    let outcome: Value = res.fhir().await;
    assert_eq!(spine_code(&outcome), "UNABLE_TO_CALL_SERVICE");
    assert!(
        !outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("pool"),
        "no internals leak"
    );
    let health = app
        .client
        .get(format!("{}/_health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    drop(held);
    assert_eq!(
        app.get("/Organization", &token).await.status(),
        200,
        "recovers"
    );
}
