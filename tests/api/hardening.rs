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

#[tokio::test]
async fn cpis_serve_refuses_a_remote_postgresql_without_tls() {
    let config = Config::for_tests("sqlite://unused.db".into());
    for url in [
        "postgres://cpis:pw@192.0.2.10:5432/cpis?connect_timeout=1",
        "postgres://cpis:pw@192.0.2.10:5432/cpis?sslmode=prefer&connect_timeout=1",
        "postgresql:///cpis?host=192.0.2.10&sslmode=disable&connect_timeout=1",
    ] {
        let mut serve = Serve::start(&config, &[("CPIS_DATABASE_URL", url)]);
        let code = serve.exit_within(Duration::from_secs(15)).await;
        let log = serve.log();
        assert_eq!(code, Some(2), "{url}: {log}");
        assert!(log.contains("sslmode"), "{url}: {log}");
        assert!(
            log.contains("CPIS_DATABASE_ALLOW_PLAINTEXT"),
            "{url}: {log}"
        );
        assert!(!log.contains("pw@"), "the password is not shown: {log}");
    }
}

// 2. Endpoints that embed an internal IPv4 address, and reserved ranges.

#[tokio::test]
async fn endpoints_embedding_an_internal_ipv4_or_in_reserved_ranges_are_refused() {
    let app = TestApp::spawn_with(|c| c.notify_allow_private_networks = false).await;
    app.create_la(LA_A).await;
    for endpoint in [
        "http://[64:ff9b::a00:1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b:1::a9fe:a9fe]/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[2002:c0a8:1::1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[::10.1.2.3]/hook",
        "http://[::ffff:192.168.0.1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",
        "http://192.0.0.8/hook",
        "http://192.0.0.170/hook",
        "http://198.18.0.1/hook",
        "http://198.19.255.254/hook",
        "http://240.0.0.1/hook",
        "http://192.0.2.1/hook",
        "http://198.51.100.7/hook",
        "http://203.0.113.9/hook",
        "http://[2001:db8::1]/hook",
    ] {
        let res = app
            .post(
                "/Subscription",
                &app.social(LA_A),
                &subscription_json(endpoint),
            )
            .await;
        let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
        assert_eq!(
            outcome["issue"][0]["expression"][0], "Subscription.channel.endpoint",
            "{endpoint}"
        );
    }
    assert_eq!(app.count_rows("subscriptions"), 0);
    // A public address, however written, is still accepted.
    for endpoint in [
        "http://[64:ff9b::808:808]/hook",
        "http://[2002:808:808::1]/hook",
    ] {
        let res = app
            .post(
                "/Subscription",
                &app.social(LA_A),
                &subscription_json(endpoint),
            )
            .await;
        assert_eq!(res.status(), 201, "{endpoint}");
    }
}

/// An LA with a plan for `CHILD` and a Subscription to `endpoint`, on an app that does not
/// deliver itself (a `cpis serve` process does).
async fn subscribed_app(endpoint: &str) -> TestApp {
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-1")).await;
    let res = app
        .post(
            "/Subscription",
            &app.social(LA_A),
            &subscription_json(endpoint),
        )
        .await;
    assert_eq!(res.status(), 201);
    app
}

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
async fn deliveries_go_to_the_endpoint_not_to_a_proxy_of_the_environment() {
    let receiver = Receiver::start();
    let proxy = Receiver::start();
    let proxy_url = proxy.url.trim_end_matches("/notify").to_string();
    let app = subscribed_app(&receiver.url).await;
    let mut serve = Serve::start(
        &app.config,
        &[
            ("HTTP_PROXY", proxy_url.as_str()),
            ("http_proxy", proxy_url.as_str()),
            ("HTTPS_PROXY", proxy_url.as_str()),
            ("https_proxy", proxy_url.as_str()),
            ("ALL_PROXY", proxy_url.as_str()),
            ("all_proxy", proxy_url.as_str()),
        ],
    );
    serve.healthy().await;
    look_up_the_child(&app).await;
    let delivered = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        proxy.attempts().is_empty(),
        "the proxy was used: {:?}",
        proxy.attempts()
    );
    assert_eq!(delivered.len(), 1, "{}", serve.log());
}

// 4. A failed delivery's log line names the Subscription, not the endpoint.

#[tokio::test]
async fn a_failed_delivery_is_logged_without_the_endpoint_url() {
    let secret = "la-secret-in-the-query-3f9a";
    let endpoint = format!("http://127.0.0.1:{}/hook?key={secret}", free_port());
    let app = subscribed_app(&endpoint).await;
    let subscription = body(app.get("/Subscription", &app.social(LA_A)).await).await;
    let subscription_id = subscription["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut serve = Serve::start(&app.config, &[("RUST_LOG", "debug")]);
    serve.healthy().await;
    look_up_the_child(&app).await;
    let log = serve
        .wait_for_log("notification delivery failed", Duration::from_secs(10))
        .await;
    assert!(log.contains("notification delivery failed"), "{log}");
    assert!(
        !log.contains(secret),
        "the endpoint's query is logged: {log}"
    );
    assert!(!log.contains("/hook"), "the endpoint is logged: {log}");
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("notification not sent") || l.contains("delivery failed"))
        .collect();
    assert!(!failures.is_empty());
    for line in failures {
        assert!(line.contains(&subscription_id), "{line}");
    }
}

// 5. Too many search parameters, or values in one.

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
async fn cpis_serve_refuses_a_jwks_url_without_an_issuer() {
    let mut config = Config::for_tests("sqlite://unused.db".into());
    config.jwt_issuer = None;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/cpis.db", dir.path().display());
    let mut serve = Serve::start(
        &config,
        &[
            ("CPIS_DATABASE_URL", db.as_str()),
            ("CPIS_JWT_SECRET", ""),
            ("CPIS_JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json"),
        ],
    );
    let code = serve.exit_within(Duration::from_secs(15)).await;
    let log = serve.log();
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("CPIS_JWT_ISSUER"), "{log}");
}

// 8. CORS lets a browser send the views' alias of the care-setting header.

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
