//! What each LA is shown of its children's accesses (SPEC §3): the pull is complete by
//! construction (an LA that always pulls with `_lastUpdated=gt` the newest `meta.lastUpdated` it
//! has received misses nothing, whatever the concurrency and however many server processes),
//! and the 24-hour collapse is per LA and race-free.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use cpis::clock::Clock;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::process::ServerProcess;
use crate::receiver::Receiver;

const CHILD: &str = "9449306753";

/// Every AuditEvent of a search, following `next` links; `base` is the server's FHIR base.
async fn all_pages(app: &TestApp, base: &str, token: &str, query: &str) -> Vec<Value> {
    let mut url = Some(format!("{base}/AuditEvent?{query}"));
    let mut found = Vec::new();
    while let Some(next) = url.take() {
        let res = app
            .client
            .get(&next)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{next}");
        let bundle: Value = res.json().await.unwrap();
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            found.push(entry["resource"].clone());
        }
        url = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    found
}

fn ids(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// An LA's pull loop with the cursor rule, against `bases` in turn, until `stop`; then once
/// more. Returns the ids of every access it received.
async fn pull_until(
    app: &TestApp,
    bases: &[String],
    token: &str,
    stop: &AtomicBool,
) -> BTreeSet<String> {
    let mut cursor: Option<String> = None;
    let mut received = BTreeSet::new();
    let mut turn = 0;
    loop {
        let finished = stop.load(Ordering::SeqCst);
        let query = match &cursor {
            None => "_count=500".to_string(),
            Some(c) => format!("_count=500&_lastUpdated=gt{}", c.replace('+', "%2B")),
        };
        let base = &bases[turn % bases.len()];
        turn += 1;
        let pulled = all_pages(app, base, token, &query).await;
        for event in &pulled {
            let stamp = event["meta"]["lastUpdated"].as_str().unwrap().to_string();
            if cursor.as_ref().is_none_or(|c| stamp > *c) {
                cursor = Some(stamp);
            }
            received.insert(event["id"].as_str().unwrap().to_string());
        }
        if finished {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Eight clinicians look up twenty children of LA A for `seconds` through `bases` (every
/// lookup by a new person, so every access is shown), while LA A pulls with the cursor rule.
/// What it pulled must be every access recorded, as operations counts them.
async fn pull_under_concurrent_lookups(app: &TestApp, bases: Vec<String>, seconds: u64) {
    let children: Vec<String> = (0..20)
        .map(|i| {
            (0..)
                .find_map(|k| cpis::fhir::NhsNumber::from_stem(300_000_000 + i * 7 + k))
                .unwrap()
                .as_str()
                .to_string()
        })
        .collect();
    let entries: Vec<Value> = children
        .iter()
        .enumerate()
        .map(|(i, nhs)| {
            let reference = format!("C-{i}");
            json!({"resource": plan_json(nhs, LA_A, &reference),
                   "request": {"method": "PUT", "url": format!("EpisodeOfCare?identifier={}|{reference}", plan_system(LA_A))}})
        })
        .collect();
    let res = app
        .post(
            "",
            &app.social(LA_A),
            &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}),
        )
        .await;
    assert_eq!(res.status(), 200);

    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for worker in 0..8usize {
        let (bases, children) = (bases.clone(), children.clone());
        let lookups = lookups.clone();
        let app_client = app.client.clone();
        let tokens: Vec<String> = (0..4000)
            .map(|n| clinician(app, worker * 10_000 + n))
            .collect();
        clients.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                let token = &tokens[n % tokens.len()];
                let child = &children[(worker * 7 + n) % children.len()];
                let base = &bases[(worker + n) % bases.len()];
                let res = app_client
                    .get(format!("{base}/Flag?patient:identifier={NHS}|{child}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                lookups.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        }));
    }
    let puller = {
        let stop = stop.clone();
        async move { pull_until(app, &bases, &app.social(LA_A), &stop).await }
    };
    let waiter = async {
        for client in clients {
            client.await.unwrap();
        }
        stop.store(true, Ordering::SeqCst);
    };
    let (pulled, ()) = tokio::join!(puller, waiter);
    let recorded = ids(&all_pages(app, &app.base, &app.ops(), "_count=500").await);
    let done = lookups.load(Ordering::SeqCst);
    assert_eq!(recorded.len(), done, "one access per lookup");
    let missed: Vec<&String> = recorded.difference(&pulled).collect();
    assert!(
        missed.is_empty(),
        "the LA's pull missed {} of {} accesses: {missed:?}",
        missed.len(),
        recorded.len()
    );
}

#[tokio::test]
async fn an_la_pulling_with_the_cursor_rule_gets_every_access_under_concurrent_lookups() {
    let app = TestApp::spawn_with(|c| c.workers = Some(4)).await;
    app.create_la(LA_A).await;
    let bases = vec![app.base.clone()];
    pull_under_concurrent_lookups(&app, bases, 3).await;
}

#[tokio::test]
async fn the_pull_misses_nothing_with_two_server_processes_on_one_database() {
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    app.create_la(LA_A).await;
    let servers = [
        ServerProcess::start(&app.config, &[]).await,
        ServerProcess::start(&app.config, &[]).await,
    ];
    let bases = servers.iter().map(|s| s.base.clone()).collect();
    pull_under_concurrent_lookups(&app, bases, 3).await;
}

fn at(h: u32, min: u32) -> i64 {
    Utc.with_ymd_and_hms(2026, 11, 2, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn an_la_that_adds_a_plan_hears_of_the_next_view_within_the_day() {
    let clock = Clock::fixed(at(9, 0));
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A")).await;
    let nurse = clinician(&app, 1);
    let look = || async {
        let res = app
            .get(&format!("/Flag?patient:identifier={NHS}|{CHILD}"), &nurse)
            .await;
        assert_eq!(res.status(), 200);
    };
    look().await;
    clock.set(at(10, 0));
    app.create_plan(&plan_json(CHILD, LA_B, "P-B")).await;
    look().await;
    clock.set(at(11, 0));
    look().await;

    let pulled = |la: &'static str| {
        let token = app.social(la);
        let app = &app;
        async move { all_pages(app, &app.base, &token, "").await }
    };
    let to_a = pulled(LA_A).await;
    let to_b = pulled(LA_B).await;
    assert_eq!(to_a.len(), 1, "LA A was told of the first view only");
    assert_eq!(
        to_b.len(),
        1,
        "LA B, new to the child, was told of the next view"
    );
    assert_ne!(to_a[0]["id"], to_b[0]["id"]);
    // Each LA's own history search of the child agrees, and reads by id follow it.
    let history_of = |la: &'static str| {
        let token = app.social(la);
        let app = &app;
        async move {
            ids(&all_pages(
                app,
                &app.base,
                &token,
                &format!("patient:identifier={CHILD}"),
            )
            .await)
        }
    };
    assert_eq!(history_of(LA_A).await, ids(&to_a));
    assert_eq!(history_of(LA_B).await, ids(&to_b));
    let a_first = to_a[0]["id"].as_str().unwrap();
    let b_first = to_b[0]["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/AuditEvent/{b_first}"), &app.social(LA_B))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get(&format!("/AuditEvent/{a_first}"), &app.social(LA_B))
            .await
            .status(),
        403
    );
    // The clinician's history keeps its meaning: the person's first view of the day.
    let shown = all_pages(
        &app,
        &app.base,
        &app.health(),
        &format!("patient:identifier={CHILD}"),
    )
    .await;
    let nurses: Vec<&Value> = shown
        .iter()
        .filter(|e| e["agent"][0]["who"]["identifier"]["value"] == "clinician-1")
        .collect();
    assert_eq!(nurses.len(), 1);
}

#[tokio::test]
async fn two_processes_recording_the_same_first_view_at_once_show_and_notify_it_once() {
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A")).await;
    let receiver = Receiver::start();
    let subscription = json!({
        "resourceType": "Subscription", "status": "requested", "reason": "CP-IS accesses",
        "criteria": "AuditEvent?",
        "channel": {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"}
    });
    assert_eq!(
        app.post("/Subscription", &app.social(LA_A), &subscription)
            .await
            .status(),
        201
    );
    let servers = [
        ServerProcess::start(&app.config, &[("CPIS_NOTIFY_DISPATCHER", "0")]).await,
        ServerProcess::start(&app.config, &[("CPIS_NOTIFY_DISPATCHER", "0")]).await,
    ];
    let nurse = clinician(&app, 1);
    for _round in 0..5 {
        let views = (0..8).map(|n| {
            let url = format!(
                "{}/Flag?patient:identifier={NHS}|{CHILD}",
                servers[n % 2].base
            );
            let request = app.client.get(url).bearer_auth(&nurse);
            async move { request.send().await.unwrap().status() }
        });
        for status in futures::future::join_all(views).await {
            assert_eq!(status, 200);
        }
    }
    let shown = all_pages(&app, &app.base, &app.social(LA_A), "").await;
    assert_eq!(shown.len(), 1, "one view shown to the LA");
    assert_eq!(
        app.count_rows("notification_outbox"),
        1,
        "and notified once"
    );
    assert_eq!(app.count_rows("audit_events"), 40, "every view recorded");
}
