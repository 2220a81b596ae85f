//! Subscription endpoints and their deliveries: no internal address, no proxy of the
//! environment, no endpoint URL in a failure's log line.

use super::*;

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
