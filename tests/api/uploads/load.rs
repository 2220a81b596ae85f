//! Uploads under strain: a server killed midway through a large one, a large one beside
//! audited lookups, and two racing for the same new plans.

use super::*;

#[tokio::test]
async fn a_server_killed_during_a_large_transaction_keeps_all_or_none_of_it() {
    use crate::process::ServerProcess;
    use std::time::Instant;
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    app.create_la(LA_A).await;
    const PLANS: usize = 4000;
    let env = [
        ("CPIS_MAX_BUNDLE_ENTRIES", "10000"),
        ("CPIS_MAX_BODY_BYTES", "67108864"),
    ];
    let transaction = |prefix: &str, n: usize| {
        bundle(
            "transaction",
            (0..n)
                .map(|i| upsert(&plan_json("9449306753", LA_A, &format!("{prefix}-{i}"))))
                .collect(),
        )
    };
    // Kill the server while the upload is in flight: timed from a tenth of it, about half way;
    // sooner on each try if the server was quicker than that.
    let mut fraction = 5;
    for attempt in 0..4 {
        let mut server = ServerProcess::start(&app.config, &env).await;
        let send = |upload: Value| {
            let (client, url, token) = (app.client.clone(), server.base.clone(), app.social(LA_A));
            async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("Content-Type", "application/fhir+json")
                    .body(upload.to_string())
                    .send()
                    .await
            }
        };
        let started = Instant::now();
        let warm = send(transaction(&format!("WARM{attempt}"), PLANS / 10)).await;
        assert_eq!(warm.unwrap().status(), 200);
        let kill_after = started.elapsed() * fraction;
        let before = app.count_rows("resources");
        let sending = tokio::spawn(send(transaction(&format!("CRASH{attempt}"), PLANS)));
        tokio::time::sleep(kill_after).await;
        server.kill9();
        if sending.await.unwrap().is_ok() {
            fraction = (fraction / 2).max(1);
            continue;
        }
        let _restarted = ServerProcess::start(&app.config, &env).await;
        let written = app.count_rows("resources") - before;
        assert!(
            written == 0 || written == 2 * PLANS as i64,
            "all or none of the transaction: {written} rows of plans and flags"
        );
        let plans = (app.count_rows("resources") - 1) / 2;
        assert_eq!(
            app.count_rows("unique_identifiers") - 1,
            plans,
            "no stray identifiers"
        );
        return;
    }
    panic!("the server answered every upload before it could be killed");
}

fn nth_child(i: u64) -> String {
    (0..)
        .find_map(|k| cpis::fhir::NhsNumber::from_stem(200_000_000 + i * 11 + k))
        .unwrap()
        .as_str()
        .to_string()
}

/// One clinician looking the children up again and again while `uploading` holds: how many
/// lookups were answered 200, how many 503 (with Retry-After), and the slowest. Any other answer,
/// or none within the pool timeout, fails the test.
fn lookups_while(
    app: &TestApp,
    worker: usize,
    children: Vec<String>,
    uploading: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize, std::time::Duration)> {
    // A lookup that waits longer than the pool timeout (and a second to answer) has hung.
    let client = reqwest::Client::builder()
        .timeout(app.config.db_timeout + std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    let base = app.base.clone();
    let tokens: Vec<String> = (0..50)
        .map(|n| {
            let mut req = token_request(cpis::auth::Role::HealthCare, HOSPITAL);
            req.sub = format!("clinician-{worker}-{n}");
            app.token_for(&req)
        })
        .collect();
    tokio::spawn(async move {
        let (mut ok, mut busy, mut n) = (0usize, 0usize, 0usize);
        let mut slowest = std::time::Duration::ZERO;
        while uploading.load(std::sync::atomic::Ordering::SeqCst) {
            let child = &children[(worker + n) % children.len()];
            let asked = std::time::Instant::now();
            let res = client
                .get(format!("{base}/Flag?patient:identifier={NHS}|{child}"))
                .bearer_auth(&tokens[n % tokens.len()])
                .send()
                .await
                .expect("an answer within the pool timeout, never a hang");
            slowest = slowest.max(asked.elapsed());
            match res.status().as_u16() {
                200 => ok += 1,
                503 => {
                    assert!(
                        res.headers().contains_key("retry-after"),
                        "503 with Retry-After"
                    );
                    busy += 1;
                }
                other => panic!("a lookup during the upload answered {other}"),
            }
            n += 1;
        }
        (ok, busy, slowest)
    })
}

#[tokio::test]
async fn a_large_upload_never_makes_audited_lookups_fail_and_reports_every_entry() {
    const ENTRY_LIMIT: usize = 5000;
    const PLANS: usize = 20_000;
    let app = TestApp::spawn_with(|c| {
        c.max_bundle_entries = ENTRY_LIMIT;
        c.max_body_bytes = 64 * 1024 * 1024;
    })
    .await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    let looked_up: Vec<String> = (0..20).map(|i| nth_child(1_000_000 + i)).collect();
    let seeded: Vec<Value> = looked_up
        .iter()
        .enumerate()
        .map(|(i, nhs)| upsert(&plan_json(nhs, LA_B, &format!("L-{i}"))))
        .collect();
    assert_eq!(
        app.post("", &app.social(LA_B), &bundle("batch", seeded))
            .await
            .status(),
        200
    );

    let uploading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let clients: Vec<_> = (0..8usize)
        .map(|worker| lookups_while(&app, worker, looked_up.clone(), uploading.clone()))
        .collect();

    let mut accepted = 0;
    for part in 0..PLANS / ENTRY_LIMIT {
        let entries: Vec<Value> = (0..ENTRY_LIMIT)
            .map(|k| {
                let i = (part * ENTRY_LIMIT + k) as u64;
                upsert(&plan_json(&nth_child(i), LA_A, &format!("BIG-{i}")))
            })
            .collect();
        let res = app
            .post("", &app.social(LA_A), &bundle("batch", entries))
            .await;
        assert_eq!(res.status(), 200);
        let report = body(res).await;
        let statuses = statuses(&report);
        assert_eq!(
            statuses.len(),
            ENTRY_LIMIT,
            "the report accounts for every entry"
        );
        accepted += statuses.iter().filter(|s| s.starts_with("201")).count();
    }
    uploading.store(false, std::sync::atomic::Ordering::SeqCst);
    let (mut ok, mut busy, mut slowest) = (0, 0, std::time::Duration::ZERO);
    for client in clients {
        let (o, b, s) = client.await.unwrap();
        ok += o;
        busy += b;
        slowest = slowest.max(s);
    }
    eprintln!("lookups during the upload: {ok} answered 200, {busy} 503, slowest {slowest:?}");
    assert_eq!(accepted, PLANS);
    assert!(
        ok > 0,
        "lookups were answered during the upload ({busy} were 503)"
    );
    let reports: Value = app
        .get("/Bundle?type=batch-response", &app.social(LA_A))
        .await
        .fhir()
        .await;
    assert_eq!(reports["total"], PLANS / ENTRY_LIMIT);
}

#[tokio::test]
async fn two_uploads_racing_for_the_same_new_plans_answer_each_entry_200_or_201() {
    let app = app_with_las().await;
    let plans: Vec<Value> = (0..60)
        .map(|i| upsert(&plan_json(&nth_child(i), LA_A, &format!("RACE-{i}"))))
        .collect();
    let send = || {
        let request = app
            .client
            .post(app.url(""))
            .bearer_auth(app.social(LA_A))
            .header("Content-Type", "application/fhir+json")
            .body(bundle("batch", plans.clone()).to_string());
        async move { request.send().await.unwrap() }
    };
    let (first, second) = tokio::join!(send(), send());
    for res in [first, second] {
        assert_eq!(res.status(), 200);
        let report: Value = res.json().await.unwrap();
        for status in statuses(&report) {
            assert!(
                status.starts_with("200") || status.starts_with("201"),
                "every entry is created or found, never an error: {status}"
            );
        }
    }
    assert_eq!(
        app.count_rows("resources") - 2,
        2 * 60,
        "one plan and one Flag each"
    );
}
