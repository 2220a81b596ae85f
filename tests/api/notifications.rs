//! Subscriptions and LA notifications (SPEC §3 Subscription): every unscheduled access to an
//! LA's child is POSTed to the LA's endpoints from a durable outbox, at least once, with a
//! stable notification id, across failures, restarts and several server processes.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use cpis::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::process::ServerProcess;
use crate::receiver::Receiver;

mod policy;

const CHILD: &str = "9449306753";
const OTHER_CHILD: &str = "9000000009";
const SOON: Duration = Duration::from_secs(2);

async fn subscribe(app: &TestApp, la: &str, endpoint: &str) -> Value {
    let res = app
        .post(
            "/Subscription",
            &app.social(la),
            &subscription_json(endpoint),
        )
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn app_with_children() -> TestApp {
    let app = TestApp::spawn().await;
    setup_children(&app).await;
    app
}

/// An app whose dispatcher the test steps (`TestApp::deliver_pending`), on a clock the test
/// moves: a retry is due when the test says so, and nothing is waited for.
async fn stepped_app(customise: impl FnOnce(&mut cpis::config::Config)) -> (TestApp, Clock) {
    let clock = Clock::fixed(Clock::system().now_ms());
    let app = TestApp::spawn_with(|c| {
        c.dispatcher = false;
        c.clock = clock.clone();
        customise(c);
    })
    .await;
    setup_children(&app).await;
    (app, clock)
}

/// Delivers what is due, then moves the clock past the longest backoff: one attempt per
/// notification per round.
async fn delivery_round(app: &TestApp, clock: &Clock) {
    app.deliver_pending().await;
    clock.set(clock.now_ms() + app.config.delivery.max_backoff.as_millis() as i64 + 1);
}

async fn setup_children(app: &TestApp) {
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    app.create_plan(&plan_json(OTHER_CHILD, LA_B, "P-B1")).await;
}

async fn look_up(app: &TestApp, token: &str, nhs: &str, headers: &[(&str, &str)]) {
    let res = app
        .send(
            Method::GET,
            &format!("/Flag?patient:identifier={nhs}"),
            token,
            None,
            headers,
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn subscription_status(app: &TestApp, id: &str) -> Value {
    let res = app
        .get(&format!("/Subscription/{id}"), &app.social(LA_A))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_requested_subscription_becomes_active_and_belongs_to_its_la() {
    let app = app_with_children().await;
    let created = subscribe(&app, LA_A, "https://la-a.example.org/notify").await;
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().unwrap();
    let path = format!("/Subscription/{id}");
    assert_eq!(app.get(&path, &app.social(LA_A)).await.status(), 200);
    let overseen: Value = app.get(&path, &app.ops()).await.json().await.unwrap();
    assert_eq!(
        overseen["channel"]["header"][0], "Authorization: [redacted]",
        "operations never see an LA's endpoint credentials"
    );
    let own: Value = app
        .get(&path, &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        own["channel"]["header"][0],
        "Authorization: Bearer la-shared-secret"
    );
    expect_outcome(
        app.get(&path, &app.social(LA_B)).await,
        403,
        "ACCESS_DENIED",
    )
    .await;
    let mine: Value = app
        .get("/Subscription?status=active", &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["total"], 1);
    let theirs: Value = app
        .get("/Subscription", &app.social(LA_B))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["total"], 0);
}

#[tokio::test]
async fn only_an_la_manages_subscriptions_and_only_for_audit_events() {
    let app = app_with_children().await;
    let body = subscription_json("https://la-a.example.org/notify");
    for token in [app.health(), app.ops()] {
        let res = app.post("/Subscription", &token, &body).await;
        expect_outcome(res, 403, "ACCESS_DENIED").await;
    }
    let mut wrong = body.clone();
    wrong["criteria"] = json!("Flag?");
    let res = app.post("/Subscription", &app.social(LA_A), &wrong).await;
    let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Subscription.criteria"
    );
    let mut relative = body.clone();
    relative["channel"]["endpoint"] = json!("/notify");
    let res = app
        .post("/Subscription", &app.social(LA_A), &relative)
        .await;
    expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(app.count_rows("subscriptions"), 0);
}

#[tokio::test]
async fn endpoints_outside_the_allowed_hosts_are_refused() {
    let app = TestApp::spawn_with(|c| {
        c.notify_allowed_hosts = Some(vec!["notify.la-a.gov.uk".into()]);
    })
    .await;
    setup_children(&app).await;
    let res = app
        .post(
            "/Subscription",
            &app.social(LA_A),
            &subscription_json("https://attacker.example.com/collect"),
        )
        .await;
    let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Subscription.channel.endpoint"
    );
    subscribe(&app, LA_A, "https://notify.la-a.gov.uk/cpis").await;
}

#[tokio::test]
async fn an_unscheduled_access_is_delivered_to_the_childs_la_within_two_seconds() {
    let app = app_with_children().await;
    let receiver_a = Receiver::start();
    let receiver_b = Receiver::start();
    subscribe(&app, LA_A, &receiver_a.url).await;
    subscribe(&app, LA_B, &receiver_b.url).await;
    look_up(&app, &app.health(), CHILD, &[]).await;
    let delivered = receiver_a.wait_for(1, SOON).await;
    assert_eq!(delivered.len(), 1, "delivered within 2 s");
    let note = &delivered[0];
    assert_eq!(note.body["resourceType"], "AuditEvent");
    assert_eq!(note.body["entity"][0]["what"]["identifier"]["value"], CHILD);
    assert!(!note.notification_id.is_empty());
    assert!(note
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "Bearer la-shared-secret"));
    assert_eq!(
        app.count_rows("notification_outbox"),
        1,
        "nothing queued for LA B, which never hears of LA A's children"
    );
    assert!(receiver_b.attempts().is_empty());
}

#[tokio::test]
async fn scheduled_and_repeated_accesses_are_not_notified() {
    let (app, clock) = stepped_app(|_| {}).await;
    let receiver = Receiver::start();
    subscribe(&app, LA_A, &receiver.url).await;
    let nurse = clinician(&app, 1);
    look_up(
        &app,
        &nurse,
        CHILD,
        &[("IsUnscheduledAccessEvent", "false")],
    )
    .await;
    look_up(&app, &nurse, CHILD, &[]).await;
    look_up(&app, &nurse, CHILD, &[]).await;
    // Accesses in one instant are stamped a millisecond apart: a round later, all are due.
    clock.set(clock.now_ms() + 1000);
    app.deliver_pending().await;
    assert_eq!(
        receiver.attempts().len(),
        1,
        "one notification: the first unscheduled view"
    );
    assert_eq!(app.count_rows("notification_outbox"), 1);
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_notification_again_until_it_recovers() {
    let (app, clock) = stepped_app(|_| {}).await;
    let receiver = Receiver::start();
    let id = subscribe(&app, LA_A, &receiver.url).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    receiver.fail_next(6);
    look_up(&app, &app.health(), CHILD, &[]).await;
    for _ in 0..8 {
        delivery_round(&app, &clock).await;
    }
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), 1, "delivered once the endpoint recovered");
    let attempts = receiver.attempts();
    assert_eq!(attempts.len(), 7);
    assert!(
        attempts
            .iter()
            .all(|a| a.notification_id == delivered[0].notification_id),
        "the same X-CPIS-Notification-Id on every retry"
    );
    // Back to active after the successful delivery.
    let status = subscription_status(&app, &id).await;
    assert_eq!(status["status"], "active");
    assert!(status.get("error").is_none());
}

#[tokio::test]
async fn five_failures_in_a_row_put_the_subscription_in_error_with_the_reason() {
    let (app, clock) = stepped_app(|_| {}).await;
    let receiver = Receiver::start();
    let id = subscribe(&app, LA_A, &receiver.url).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    receiver.fail_next(usize::MAX);
    look_up(&app, &app.health(), CHILD, &[]).await;
    for attempt in 1..=4 {
        delivery_round(&app, &clock).await;
        let status = subscription_status(&app, &id).await;
        assert_eq!(status["status"], "active", "after {attempt} failures");
    }
    delivery_round(&app, &clock).await;
    let status = subscription_status(&app, &id).await;
    assert_eq!(status["status"], "error", "{status}");
    assert!(status["error"].as_str().unwrap().contains("500"));
    assert_eq!(receiver.attempts().len(), 5);
}

#[tokio::test]
async fn an_unchanged_subscription_put_makes_no_new_version() {
    let app = app_with_children().await;
    let created = subscribe(&app, LA_A, "https://la-a.example.org/notify").await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .put(&format!("/Subscription/{id}"), &app.social(LA_A), &created)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "W/\"1\"");
}

#[tokio::test]
async fn a_subscription_turned_off_gets_nothing() {
    let (app, _clock) = stepped_app(|_| {}).await;
    let receiver = Receiver::start();
    let created = subscribe(&app, LA_A, &receiver.url).await;
    let id = created["id"].as_str().unwrap();
    let mut off = created.clone();
    off["status"] = json!("off");
    let res = app
        .put(&format!("/Subscription/{id}"), &app.social(LA_A), &off)
        .await;
    assert_eq!(res.status(), 200);
    look_up(&app, &app.health(), CHILD, &[]).await;
    assert_eq!(app.deliver_pending().await, 0, "nothing queued");
    assert!(receiver.attempts().is_empty());
}

#[tokio::test]
async fn a_notification_committed_before_a_sigkill_is_delivered_after_restart() {
    // Setup through an in-process app that delivers nothing itself.
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    setup_children(&app).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    subscribe(&app, LA_A, &format!("http://127.0.0.1:{port}/notify")).await;
    drop(listener);

    // The access is committed by a server that is killed before it delivers anything.
    let mut first = ServerProcess::start(&app.config, &[("CPIS_NOTIFY_DISPATCHER", "0")]).await;
    let res = app
        .client
        .get(format!("{}/Flag?patient:identifier={CHILD}", first.base))
        .bearer_auth(app.health())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    first.kill9();
    assert_eq!(app.count_rows("notification_outbox"), 1);

    let receiver = Receiver::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let _second = ServerProcess::start(&app.config, &[]).await;
    let delivered = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(delivered.len(), 1, "delivered after the restart");
    assert_eq!(
        delivered[0].body["entity"][0]["what"]["identifier"]["value"],
        CHILD
    );
}

#[tokio::test]
async fn two_server_processes_on_one_database_deliver_each_notification_once() {
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    setup_children(&app).await;
    let receiver = Receiver::start();
    subscribe(&app, LA_A, &receiver.url).await;
    let servers = [
        ServerProcess::start(&app.config, &[]).await,
        ServerProcess::start(&app.config, &[]).await,
    ];
    const ACCESSES: usize = 40;
    for n in 0..ACCESSES {
        let server = &servers[n % 2];
        let res = app
            .client
            .get(format!("{}/Flag?patient:identifier={CHILD}", server.base))
            .bearer_auth(clinician(&app, n))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let delivered = receiver.wait_for(ACCESSES, Duration::from_secs(10)).await;
    assert_eq!(delivered.len(), ACCESSES);
    // Each row is marked delivered after its POST was answered: once none is left, every
    // POST either server will ever make has been made.
    let undelivered = || app.count_where("notification_outbox", "delivered_ms IS NULL");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while undelivered() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(undelivered(), 0);
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for attempt in receiver.attempts() {
        *per_id.entry(attempt.notification_id).or_default() += 1;
    }
    assert_eq!(per_id.len(), ACCESSES);
    assert!(
        per_id.values().all(|n| *n == 1),
        "each notification delivered once: {per_id:?}"
    );
}
