//! The endpoint policy: internal addresses refused at registration and at delivery unless
//! the operator names the host, headers checked, and a tightened policy applied to existing
//! subscriptions.

use super::*;

/// A stepped app whose endpoint policy has no opt-in (as production has by default).
async fn strict_app(customise: impl FnOnce(&mut cpis::config::Config)) -> (TestApp, Clock) {
    stepped_app(|c| {
        c.notify_allow_private_networks = false;
        customise(c);
    })
    .await
}

/// The Subscription after five delivery rounds (five failures put it in `error`).
async fn after_five_rounds(app: &TestApp, clock: &Clock, id: &str) -> Value {
    for _ in 0..5 {
        delivery_round(app, clock).await;
    }
    subscription_status(app, id).await
}

#[tokio::test]
async fn endpoints_at_internal_addresses_are_refused_at_registration() {
    let (app, _clock) = strict_app(|_| {}).await;
    for endpoint in [
        "http://127.0.0.1:9000/hook",
        "http://10.0.0.7/hook",
        "http://172.20.1.1/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/hook",
        "http://224.0.0.251/hook",
        "http://[::1]:9000/hook",
        "http://[::]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00:ab::1]/hook",
        "http://[ff02::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
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
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_delivery_without_detail() {
    let (app, clock) = strict_app(|_| {}).await;
    let receiver = Receiver::start();
    // `localhost` is a name: it passes registration, and is refused once resolved.
    let endpoint = receiver.url.replace("127.0.0.1", "localhost");
    let id = subscribe(&app, LA_A, &endpoint).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    look_up(&app, &app.health(), CHILD, &[]).await;
    let status = after_five_rounds(&app, &clock, &id).await;
    assert_eq!(status["status"], "error", "{status}");
    assert_eq!(status["error"], "delivery failed", "no network detail");
    assert!(receiver.attempts().is_empty(), "nothing reached loopback");
}

#[tokio::test]
async fn the_operator_opts_in_by_naming_the_host() {
    let receiver = Receiver::start();
    let (app, _clock) =
        strict_app(|c| c.notify_allowed_hosts = Some(vec!["localhost".into()])).await;
    let endpoint = receiver.url.replace("127.0.0.1", "localhost");
    subscribe(&app, LA_A, &endpoint).await;
    look_up(&app, &app.health(), CHILD, &[]).await;
    app.deliver_pending().await;
    assert_eq!(receiver.delivered().len(), 1);
}

#[tokio::test]
async fn a_header_with_a_line_break_or_of_the_servers_own_is_refused() {
    let app = app_with_children().await;
    let mut body = subscription_json("https://la-a.example.org/notify");
    body["channel"]["header"] = json!([
        "Authorization: Bearer ok",
        "X-Trace: a\r\nHost: evil.example",
        "X-CPIS-Notification-Id: forged",
        "Content-Type: text/plain"
    ]);
    let res = app.post("/Subscription", &app.social(LA_A), &body).await;
    let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
    let at: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["expression"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        at,
        [
            "Subscription.channel.header[1]",
            "Subscription.channel.header[2]",
            "Subscription.channel.header[3]"
        ]
    );
    assert_eq!(app.count_rows("subscriptions"), 0);
}

#[tokio::test]
async fn a_tightened_policy_stops_an_existing_subscription() {
    // Registered while the operator allowed private networks...
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    setup_children(&app).await;
    let receiver = Receiver::start();
    let id = subscribe(&app, LA_A, &receiver.url).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // ...then the server restarts without the opt-in.
    let server = ServerProcess::start(
        &app.config,
        &[
            ("CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS", "0"),
            ("RUST_LOG", "error"),
        ],
    )
    .await;
    let res = app
        .client
        .get(format!("{}/Flag?patient:identifier={CHILD}", server.base))
        .bearer_auth(app.health())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The server delivering is another process: its rounds are waited for, not stepped.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut status = subscription_status(&app, &id).await;
    while status["status"] != "error" && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = subscription_status(&app, &id).await;
    }
    assert_eq!(status["error"], "delivery failed");
    assert!(receiver.attempts().is_empty());
}
