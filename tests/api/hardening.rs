//! The smaller holes of issue #26, each closed: a remote PostgreSQL without TLS, Subscription
//! endpoints that embed an internal IPv4 address, deliveries through a proxy of the
//! environment, a failed delivery's log line, too many search parameters or values, the UK
//! day of a day-only date against an instant, a provider's keys without an issuer, the CORS
//! preflight of the views' header alias, and control characters in FHIR strings.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use cpis::auth::jwt::KeyConfig;
use cpis::clock::Clock;
use cpis::config::Config;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::process::free_port;
use crate::receiver::Receiver;

mod delivery;
mod serve;

const CHILD: &str = "9449306753";

/// `cpis serve` on the database and key of `config`, plus `env`, its log (stderr) kept in a
/// file of its own.
struct Serve {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(config: &Config, env: &[(&str, &str)]) -> Serve {
        let KeyConfig::Secret(secret) = config.effective_key() else {
            panic!("tests sign with the HS256 test secret");
        };
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_cpis"));
        command
            .arg("serve")
            .env_clear()
            .env("CPIS_DATABASE_URL", &config.database_url)
            .env("CPIS_BIND", format!("127.0.0.1:{port}"))
            .env("CPIS_JWT_SECRET", secret)
            .env("CPIS_JWT_AUDIENCE", &config.jwt_audience)
            .env("CPIS_WORKERS", "2")
            .env("CPIS_DB_POOL_SIZE", "4")
            .env("CPIS_NOTIFY_POLL_MS", "100")
            .env("CPIS_NOTIFY_RETRY_BASE_MS", "100")
            .env("CPIS_NOTIFY_RETRY_MAX_MS", "500")
            .env("CPIS_NOTIFY_TIMEOUT_MS", "1000")
            .env("CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        if let Some(issuer) = &config.jwt_issuer {
            command.env("CPIS_JWT_ISSUER", issuer);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the cpis binary");
        Serve {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/_health` answers 200.
    async fn healthy(&mut self) {
        let health = format!("http://127.0.0.1:{}/_health", self.port);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cpis serve exited ({status}): {}", self.log());
            }
            if let Ok(res) = reqwest::get(&health).await {
                if res.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cpis serve did not become healthy: {}", self.log());
    }

    /// The exit code once the process has ended, or `None` if it still runs after `limit`.
    async fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Waits until the log holds `text`, or `limit` passes.
    async fn wait_for_log(&self, text: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(text) || start.elapsed() > limit {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A client that checks nothing (for CORS preflights and raw answers).
fn raw() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

// 1. PostgreSQL without TLS to another host.

async fn look_up_the_child(app: &TestApp) {
    let res = app
        .get(
            &format!("/Flag?patient:identifier={NHS}|{CHILD}"),
            &app.health(),
        )
        .await;
    assert_eq!(res.status(), 200);
}

// 3. Deliveries never go through a proxy named in the environment.

#[tokio::test]
async fn too_many_search_parameters_or_values_are_400_never_500() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-1")).await;
    let many_filters = vec!["_lastUpdated=gt2020"; 1100].join("&");
    let ids: Vec<String> = (0..1000).map(|i| format!("id{i}")).collect();
    let many_values = format!("_id={}", ids.join(","));
    for (ty, token) in [
        ("Flag", app.social(LA_A)),
        ("EpisodeOfCare", app.social(LA_A)),
        ("Organization", app.ops()),
        ("AuditEvent", app.ops()),
    ] {
        for (query, param) in [
            (many_filters.as_str(), "_lastUpdated"),
            (many_values.as_str(), "_id"),
        ] {
            let get = raw()
                .get(app.url(&format!("/{ty}?{query}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let post = raw()
                .post(app.url(&format!("/{ty}/_search")))
                .bearer_auth(&token)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(query.to_string())
                .send()
                .await
                .unwrap();
            for (how, res) in [("GET", get), ("POST _search", post)] {
                assert_eq!(res.status(), 400, "{how} {ty} {param}");
                let outcome: Value = res.json().await.unwrap();
                assert_eq!(spine_code(&outcome), "INVALID_SEARCH_DATA", "{outcome}");
                assert_eq!(outcome["issue"][0]["expression"][0], param, "{outcome}");
                assert!(
                    outcome["issue"][0]["diagnostics"]
                        .as_str()
                        .unwrap()
                        .contains("at most"),
                    "{outcome}"
                );
            }
        }
    }
    // What a client legitimately asks still works.
    let res = app
        .get(
            "/EpisodeOfCare?_lastUpdated=gt2020&_lastUpdated=lt2100&status=active&_id=a,b,c",
            &app.social(LA_A),
        )
        .await;
    assert_eq!(res.status(), 200);
}

// 6. A day-only date against an instant is the UK day.

#[tokio::test]
async fn a_day_only_date_against_an_instant_is_the_uk_day() {
    // 23:30 UTC on 31 May 2026 is 00:30 BST on 1 June in England.
    let late = Utc.with_ymd_and_hms(2026, 5, 31, 23, 30, 0).unwrap();
    let clock = Clock::fixed(late.timestamp_millis());
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-1")).await;
    look_up_the_child(&app).await;
    let total = |bundle: Value| bundle["total"].as_i64().unwrap();
    for (path, token, expected) in [
        (
            "/EpisodeOfCare?_lastUpdated=2026-06-01",
            app.social(LA_A),
            1,
        ),
        (
            "/EpisodeOfCare?_lastUpdated=2026-05-31",
            app.social(LA_A),
            0,
        ),
        ("/EpisodeOfCare?_lastUpdated=2026-06", app.social(LA_A), 1),
        (
            "/EpisodeOfCare?_lastUpdated=lt2026-06-01",
            app.social(LA_A),
            0,
        ),
        (
            "/EpisodeOfCare?_lastUpdated=ge2026-06-01",
            app.social(LA_A),
            1,
        ),
        ("/Flag?_lastUpdated=2026-06-01", app.social(LA_A), 1),
        // The plan's period is a plain date, compared as one.
        ("/EpisodeOfCare?date=ge2026-01-05", app.social(LA_A), 1),
        ("/EpisodeOfCare?date=lt2026-01-05", app.social(LA_A), 0),
        ("/AuditEvent?date=2026-06-01", app.ops(), 1),
        ("/AuditEvent?date=2026-05-31", app.ops(), 0),
        ("/AuditEvent?_lastUpdated=2026-06-01", app.ops(), 1),
        ("/AuditEvent?date=gt2026-05-31", app.ops(), 1),
    ] {
        let res = app.get(path, &token).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(total(body(res).await), expected, "{path}");
    }
}

// 7. A provider's keys without an issuer.

#[tokio::test]
async fn a_cors_preflight_may_ask_for_the_is_unscheduled_event_alias() {
    const ORIGIN: &str = "https://app.example.org";
    let app = TestApp::spawn_with(|c| c.cors_origins = vec![ORIGIN.into()]).await;
    for path in ["/cpis/FHIR/R4/CareTeam", "/FHIR/R4/Flag"] {
        let preflight = raw()
            .request(Method::OPTIONS, format!("{}{path}", app.address))
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", "GET")
            .header(
                "Access-Control-Request-Headers",
                "authorization,isunscheduledevent",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 200, "{path}");
        let allowed = preflight
            .headers()
            .get("access-control-allow-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(allowed.contains("isunscheduledevent"), "{path}: {allowed}");
        assert!(
            allowed.contains("isunscheduledaccessevent"),
            "{path}: {allowed}"
        );
    }
}

// 9. Control characters in FHIR strings.

#[tokio::test]
async fn control_characters_in_a_subscription_or_an_upload_are_invalid_values() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let mut subscription = subscription_json("https://notify.la.example.org/hook");
    subscription["reason"] = json!("Tell the LA\u{1b}[31m");
    let res = app
        .post("/Subscription", &app.social(LA_A), &subscription)
        .await;
    let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Subscription.reason");
    let mut plan = plan_json(CHILD, LA_A, "P-\u{0}1");
    plan["period"]["start"] = json!("2026-01-05");
    let upload = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": plan_json("9000000009", LA_A, "P-2"), "request": {"method": "POST", "url": "EpisodeOfCare"}},
        {"resource": plan, "request": {"method": "POST", "url": "EpisodeOfCare"}}
    ]});
    let before = app.snapshot();
    let res = app.post("", &app.social(LA_A), &upload).await;
    let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.identifier[0].value"
    );
    assert_eq!(app.snapshot(), before);
    // Tab, CR and LF are whitespace FHIR strings may hold.
    let mut la = la_json("E06000099");
    la["name"] = json!("Local\tauthority\r\nof tests");
    let res = app.post("/Organization", &app.ops(), &la).await;
    assert_eq!(res.status(), 201);
}

// 10. `CPIS_NHS_VIEWS=off`.

#[tokio::test]
async fn with_cpis_nhs_views_off_the_views_are_404_and_the_native_api_answers() {
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    let mut serve = Serve::start(
        &app.config,
        &[("CPIS_NHS_VIEWS", "off"), ("CPIS_SANDBOX", "1")],
    );
    serve.healthy().await;
    let root = format!("http://127.0.0.1:{}", serve.port);
    let health = app.health();
    for path in [
        "/cpis/FHIR/R4/metadata",
        "/patient-flags-api/FHIR/R4/metadata",
        "/cpis/FHIR/R4/CareTeam?patient=9449306753",
        "/cpis/FHIR/R4/AuditEvent?patient=9449306753",
        "/patient-flags-api/FHIR/R4/Flag?patient=9449306753",
    ] {
        let res = raw()
            .get(format!("{root}{path}"))
            .bearer_auth(&health)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(spine_code(&outcome), "RESOURCE_NOT_FOUND", "{outcome}");
    }
    assert_eq!(app.count_rows("audit_events"), 0, "nothing was read");
    let native = raw()
        .get(format!(
            "{root}/FHIR/R4/Flag?patient:identifier={NHS}|9449306753"
        ))
        .bearer_auth(&health)
        .send()
        .await
        .unwrap();
    assert_eq!(native.status(), 200);
    let metadata = raw()
        .get(format!("{root}/FHIR/R4/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    // On: the default, and an unknown value is a configuration error.
    let mut on = Serve::start(&app.config, &[("CPIS_NHS_VIEWS", "on")]);
    on.healthy().await;
    let res = raw()
        .get(format!(
            "http://127.0.0.1:{}/cpis/FHIR/R4/metadata",
            on.port
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut bad = Serve::start(&app.config, &[("CPIS_NHS_VIEWS", "maybe")]);
    let code = bad.exit_within(Duration::from_secs(15)).await;
    assert_eq!(code, Some(2), "{}", bad.log());
    assert!(bad.log().contains("CPIS_NHS_VIEWS"), "{}", bad.log());
}
