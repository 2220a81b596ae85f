//! Running it (issue #15): `/metrics` counts what happened and names no one, `/_ready` says
//! when to send traffic, and SIGTERM stops the server without losing an audit record or a
//! notification.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value as Sample};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::process::ServerProcess;
use crate::receiver::Receiver;

const CHILD: &str = "9449306753";

async fn app_with_a_child(customise: impl FnOnce(&mut cpis::config::Config)) -> TestApp {
    let app = TestApp::spawn_with(customise).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "OPS-1")).await;
    app
}

/// The scrape, parsed with a Prometheus text-format parser.
async fn scrape(url: &str, token: Option<&str>) -> (String, Scrape) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    (text, parsed)
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none yet).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

#[tokio::test]
async fn metrics_are_for_operations_only_on_the_main_port() {
    let app = TestApp::spawn().await;
    let url = format!("{}/metrics", app.address);
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 401);
    for token in [app.health(), app.social(LA_A)] {
        let res = app
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
    scrape(&url, Some(&app.ops())).await;
}

#[tokio::test]
async fn requests_are_counted_by_the_route_pattern_they_reached() {
    let app = TestApp::spawn().await;
    let ops = app.ops();
    for (path, status) in [
        ("/Organization/no-such-la", 404),
        ("/EpisodeOfCare/no-such-plan/_history/1", 404),
        ("/Flag/_history", 405),
        ("/Flag", 200),
    ] {
        let res = app.get(path, &ops).await;
        assert_eq!(res.status(), status, "{path}");
    }
    // Read as text: the parser takes the braces of `{id}` in a label for the label set's end.
    let (text, _) = scrape(&format!("{}/metrics", app.address), Some(&ops)).await;
    for (route, status) in [
        ("/FHIR/R4/Organization/{id}", "404"),
        ("/FHIR/R4/EpisodeOfCare/{id}/_history/{vid}", "404"),
        ("/FHIR/R4/Flag/_history", "405"),
        ("/FHIR/R4/Flag", "200"),
    ] {
        let line = format!(
            "cpis_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}} 1"
        );
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
}

/// A batch of three plans, one of them invalid.
async fn upload_three_plans_one_invalid(app: &TestApp) {
    let mut plans: Vec<Value> = ["9000000009", "9912003888", "9434765919"]
        .iter()
        .enumerate()
        .map(|(i, nhs)| plan_json(nhs, LA_A, &format!("OPS-B{i}")))
        .collect();
    plans[1]["reason"] = json!([{"text": "not to be shared"}]);
    let entries: Vec<Value> = plans
        .iter()
        .map(|p| json!({"resource": p, "request": {"method": "POST", "url": "EpisodeOfCare"}}))
        .collect();
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
    assert_eq!(app.post("", &app.social(LA_A), &batch).await.status(), 200);
}

/// A scrape once `delivered` notifications have been counted since `before` and none waits:
/// deliveries are counted once their outcome is recorded, by the dispatcher.
async fn scrape_once_delivered(
    metrics: &str,
    ops: &str,
    before: &Scrape,
    delivered: f64,
) -> (String, Scrape) {
    let started = Instant::now();
    loop {
        let (text, after) = scrape(metrics, Some(ops)).await;
        let counted = delta(
            before,
            &after,
            "cpis_notification_deliveries_total",
            &[("outcome", "delivered")],
        );
        if counted >= delivered && value(&after, "cpis_notification_outbox_backlog", &[]) == 0.0 {
            return (text, after);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_scripted_workload_moves_each_counter_by_what_it_did() {
    let receiver = Receiver::start();
    let app = app_with_a_child(|_| {}).await;
    let res = app
        .post(
            "/Subscription",
            &app.social(LA_A),
            &subscription_json(&receiver.url),
        )
        .await;
    assert_eq!(res.status(), 201);
    let metrics = format!("{}/metrics", app.address);
    let ops = app.ops();
    let (_, before) = scrape(&metrics, Some(&ops)).await;

    // Three audited lookups by three clinicians: three accesses, three notifications.
    for n in 0..3 {
        let res = app
            .get(
                &format!("/Flag?patient:identifier={CHILD}"),
                &clinician(&app, n),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    upload_three_plans_one_invalid(&app).await;
    assert_eq!(receiver.wait_for(3, Duration::from_secs(10)).await.len(), 3);

    let (text, after) = scrape_once_delivered(&metrics, &ops, &before, 3.0).await;
    let flag = [
        ("route", "/FHIR/R4/Flag"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(
        delta(&before, &after, "cpis_http_requests_total", &flag),
        3.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "cpis_http_request_duration_seconds_count",
            &[("route", "/FHIR/R4/Flag"), ("method", "GET")]
        ),
        3.0
    );
    let upload = |outcome| {
        delta(
            &before,
            &after,
            "cpis_upload_entries_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!((upload("accepted"), upload("rejected")), (2.0, 1.0));
    // Every access went through the audit writer: the batch sizes add up to three.
    assert_eq!(
        delta(&before, &after, "cpis_audit_batch_accesses_sum", &[]),
        3.0
    );
    assert!(delta(&before, &after, "cpis_audit_commit_seconds_count", &[]) >= 1.0);
    assert_eq!(value(&after, "cpis_audit_queue_depth", &[]), 0.0);
    assert_eq!(
        delta(
            &before,
            &after,
            "cpis_notification_deliveries_total",
            &[("outcome", "delivered")]
        ),
        3.0
    );
    assert_eq!(
        value(&after, "cpis_notification_outbox_oldest_age_seconds", &[]),
        0.0
    );
    assert_eq!(value(&after, "cpis_subscriptions_in_error", &[]), 0.0);
    assert!(delta(&before, &after, "cpis_db_pool_wait_seconds_count", &[]) >= 4.0);
    assert!(value(&after, "cpis_db_pool_connections", &[("state", "idle")]) >= 1.0);
    // No label holds an NHS number, a name, an id or a token.
    for secret in [
        CHILD,
        "9000000009",
        "Clinician 1",
        "clinician-1",
        &ops,
        "OPS-1",
    ] {
        assert!(!text.contains(secret), "the scrape shows {secret:?}");
    }
}

#[tokio::test]
async fn a_separate_metrics_port_serves_scrapers_without_a_token_and_nothing_else() {
    let app = TestApp::spawn_with(|c| c.metrics_bind = Some("127.0.0.1:0".into())).await;
    let address = app.metrics_address.expect("the metrics port");
    let (_, scraped) = scrape(&format!("http://{address}/metrics"), None).await;
    assert!(scraped
        .samples
        .iter()
        .any(|s| s.metric == "cpis_db_pool_connections"));
    let other = reqwest::get(format!("http://{address}/FHIR/R4/metadata"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn a_subscription_in_error_and_the_outbox_backlog_show_in_the_scrape() {
    let app = app_with_a_child(|c| c.dispatcher = false).await;
    let res = app
        .post(
            "/Subscription",
            &app.social(LA_A),
            &subscription_json("http://127.0.0.1:9/nobody"),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .get(&format!("/Flag?patient:identifier={CHILD}"), &app.health())
        .await;
    assert_eq!(res.status(), 200);
    let (_, scraped) = scrape(&format!("{}/metrics", app.address), Some(&app.ops())).await;
    assert_eq!(
        value(&scraped, "cpis_notification_outbox_backlog", &[]),
        1.0
    );
    app.deliver_pending().await;
    let (_, scraped) = scrape(&format!("{}/metrics", app.address), Some(&app.ops())).await;
    assert_eq!(
        value(
            &scraped,
            "cpis_notification_deliveries_total",
            &[("outcome", "failed")]
        ),
        1.0
    );
}

#[tokio::test]
async fn readiness_is_200_once_serving() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(format!("{}/_ready", app.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn after_sigterm_readiness_is_503_while_requests_are_still_served_for_the_grace() {
    let app = app_with_a_child(|_| {}).await;
    let mut server = ServerProcess::start(&app.config, &[("CPIS_SHUTDOWN_GRACE_MS", "1500")]).await;
    let root = server.base.trim_end_matches("/FHIR/R4").to_string();
    server.signal_term();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = reqwest::get(format!("{root}/_ready")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "stopping");
    let lookup = app
        .client
        .get(format!("{}/Flag?patient:identifier={CHILD}", server.base))
        .bearer_auth(app.health())
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status(), 200, "still served during the grace");
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sigterm_during_a_burst_keeps_every_answered_lookups_audit_event_and_the_outbox() {
    let app = app_with_a_child(|c| c.dispatcher = false).await;
    // The LA's endpoint is down for the first server: notifications stay in the outbox.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let res = app
        .post(
            "/Subscription",
            &app.social(LA_A),
            &subscription_json(&format!("http://127.0.0.1:{port}/notify")),
        )
        .await;
    assert_eq!(res.status(), 201);
    let accesses_before = app.count_rows("audit_events");

    let mut server = ServerProcess::start(&app.config, &[]).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..6 {
        let (base, answered) = (server.base.clone(), answered.clone());
        let tokens: Vec<String> = (0..400).map(|n| clinician(&app, c * 1000 + n)).collect();
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = BTreeMap::new();
            for token in tokens {
                let sent = client
                    .get(format!("{base}/Flag?patient:identifier={CHILD}"))
                    .bearer_auth(token)
                    .send()
                    .await;
                let Ok(res) = sent else { break };
                *statuses.entry(res.status().as_u16()).or_insert(0) += 1;
                if res.status() == 200 {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }
            statuses
        }));
    }
    while answered.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal_term();
    let mut statuses = BTreeMap::new();
    for client in clients {
        for (status, n) in client.await.unwrap() {
            *statuses.entry(status).or_insert(0) += n;
        }
    }
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap();
    assert!(status.success(), "exit {status:?}");
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        [200],
        "{statuses:?}"
    );
    let ok = answered.load(Ordering::SeqCst);
    assert!(ok < 2400, "the burst was cut short by the stop");
    assert_eq!(
        app.count_rows("audit_events") - accesses_before,
        i64::try_from(ok).unwrap(),
        "every 200 has its AuditEvent, and nothing else was recorded"
    );

    // What was not delivered is in the outbox; the next start delivers it.
    let pending = app.count_where("notification_outbox", "delivered_ms IS NULL");
    assert!(pending > 0);
    let receiver = Receiver::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let _next = ServerProcess::start(&app.config, &[]).await;
    let delivered = receiver
        .wait_for(usize::try_from(pending).unwrap(), Duration::from_secs(20))
        .await;
    let ids: std::collections::BTreeSet<_> = delivered
        .iter()
        .map(|r| r.notification_id.clone())
        .collect();
    assert_eq!(ids.len(), usize::try_from(pending).unwrap());
}
