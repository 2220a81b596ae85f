//! LA uploads (SPEC §3 Bundle): transaction Bundles are all or nothing, batch Bundles keep
//! what is valid and report the rest, re-sending changes nothing, and each batch's response is
//! kept as the LA's data-quality report.

use serde_json::{json, Value};

use crate::helpers::*;

async fn app_with_las() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app
}

fn upsert(plan: &Value) -> Value {
    let id = &plan["identifier"][0];
    json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": plan,
        "request": {
            "method": "PUT",
            "url": format!("EpisodeOfCare?identifier={}|{}", id["system"].as_str().unwrap(), id["value"].as_str().unwrap())
        }
    })
}

fn create(plan: &Value) -> Value {
    json!({"resource": plan, "request": {"method": "POST", "url": "EpisodeOfCare"}})
}

fn delete(la: &str, reference: &str) -> Value {
    json!({"request": {"method": "DELETE", "url": format!("EpisodeOfCare?identifier={}|{reference}", plan_system(la))}})
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn statuses(response: &Value) -> Vec<String> {
    response["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap().to_string())
        .collect()
}

/// Three plans of LA A for three children.
fn three_plans() -> Vec<Value> {
    ["9449306753", "9000000009", "9912003888"]
        .iter()
        .enumerate()
        .map(|(i, nhs)| plan_json(nhs, LA_A, &format!("U-{i}")))
        .collect()
}

#[tokio::test]
async fn a_transaction_writes_every_entry_and_answers_with_their_locations() {
    let app = app_with_las().await;
    let entries = three_plans().iter().map(upsert).collect();
    let res = app
        .post("", &app.social(LA_A), &bundle("transaction", entries))
        .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["type"], "transaction-response");
    assert_eq!(statuses(&answer), ["201 Created"; 3]);
    let first = &answer["entry"][0]["response"];
    assert!(first["location"]
        .as_str()
        .unwrap()
        .starts_with("EpisodeOfCare/"));
    assert_eq!(first["etag"], "W/\"1\"");
    assert_eq!(app.flags_of("9000000009").await["total"], 1);
}

#[tokio::test]
async fn one_bad_entry_fails_a_transaction_naming_the_entry_and_writes_nothing() {
    let app = app_with_las().await;
    let before = app.snapshot();
    let mut plans = three_plans();
    plans[1]["period"]["start"] = json!("2026-02-30");
    let entries = plans.iter().map(upsert).collect();
    let res = app
        .post("", &app.social(LA_A), &bundle("transaction", entries))
        .await;
    let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.period.start"
    );
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn a_transaction_failing_while_writing_rolls_back_the_entries_before_it() {
    let app = app_with_las().await;
    let existing = plan_json("9449306753", LA_A, "TAKEN");
    app.create_plan(&existing).await;
    let before = app.snapshot();
    let entries = vec![
        create(&plan_json("9000000009", LA_A, "NEW-1")),
        create(&existing),
    ];
    let res = app
        .post("", &app.social(LA_A), &bundle("transaction", entries))
        .await;
    let outcome = expect_outcome(res, 409, "INVALID_VALUE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.identifier"
    );
    assert_eq!(app.snapshot(), before, "entry 0 was rolled back too");
}

#[tokio::test]
async fn a_batch_keeps_the_valid_entries_and_reports_each_failure() {
    let app = app_with_las().await;
    let mut plans = three_plans();
    plans[1]["reason"] = json!([{"text": "not to be shared"}]);
    let entries = plans.iter().map(upsert).collect();
    let res = app
        .post("", &app.social(LA_A), &bundle("batch", entries))
        .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["type"], "batch-response");
    assert_eq!(
        statuses(&answer),
        ["201 Created", "422 Unprocessable Entity", "201 Created"]
    );
    let outcome = &answer["entry"][1]["response"]["outcome"];
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.reason"
    );
    assert_eq!(spine_code(outcome), "ADDITIONAL_PROPERTIES");
    assert_eq!(
        app.count_rows("resources"),
        2 + 2 * 2,
        "2 LAs, 2 plans and their flags"
    );
}

#[tokio::test]
async fn re_sending_the_same_upload_changes_nothing() {
    let app = app_with_las().await;
    let upload = bundle("batch", three_plans().iter().map(upsert).collect());
    let first = app.post("", &app.social(LA_A), &upload).await;
    assert_eq!(first.status(), 200);
    let versions = app.count_rows("resource_versions");
    let again: Value = app
        .post("", &app.social(LA_A), &upload)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(statuses(&again), ["200 OK"; 3]);
    assert!(again["entry"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["response"]["etag"] == "W/\"1\""));
    assert_eq!(
        app.count_rows("resource_versions"),
        versions,
        "no new versions"
    );
}

/// An upload's entries run in order even when several name the same plan: each sees what the
/// ones before it wrote (new plans are written together at the end of their part).
#[tokio::test]
async fn entries_naming_the_same_plan_in_one_batch_each_see_the_ones_before() {
    let app = app_with_las().await;
    let first = plan_json("9449306753", LA_A, "SAME");
    let mut changed = first.clone();
    changed["period"]["start"] = json!("2026-02-01");
    let entries = vec![
        upsert(&first),
        upsert(&changed),
        upsert(&changed),
        create(&first),
        delete(LA_A, "SAME"),
        upsert(&first),
    ];
    let answer: Value = app
        .post("", &app.social(LA_A), &bundle("batch", entries))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        statuses(&answer),
        [
            "201 Created",
            "200 OK",
            "200 OK",
            "409 Conflict",
            "204 No Content",
            "201 Created"
        ]
    );
    let etags: Vec<&str> = (0..3)
        .map(|i| answer["entry"][i]["response"]["etag"].as_str().unwrap())
        .collect();
    assert_eq!(
        etags,
        ["W/\"1\"", "W/\"2\"", "W/\"2\""],
        "changed once, then the same"
    );
    let location = |i: usize| {
        answer["entry"][i]["response"]["location"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let deleted_id = location(0).split('/').nth(1).unwrap().to_string();
    let live_id = location(5).split('/').nth(1).unwrap().to_string();
    assert_ne!(
        deleted_id, live_id,
        "the plan created after the deletion is a new one"
    );
    for ty in ["EpisodeOfCare", "Flag"] {
        let gone = app
            .get(&format!("/{ty}/{deleted_id}"), &app.social(LA_A))
            .await;
        assert_eq!(gone.status(), 410, "{ty} of the deleted plan");
        let live = app
            .get(&format!("/{ty}/{live_id}"), &app.social(LA_A))
            .await;
        assert_eq!(live.status(), 200, "{ty} of the new plan");
    }
    let found = body(
        app.get(
            &format!("/EpisodeOfCare?identifier={}|SAME", plan_system(LA_A)),
            &app.social(LA_A),
        )
        .await,
    )
    .await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], json!(live_id));
    assert_eq!(
        found["entry"][0]["resource"]["period"]["start"],
        "2026-01-05"
    );
}

#[tokio::test]
async fn a_conditional_delete_in_an_upload_removes_the_plan() {
    let app = app_with_las().await;
    let plan = app
        .create_plan(&plan_json("9449306753", LA_A, "GONE"))
        .await;
    let answer: Value = app
        .post(
            "",
            &app.social(LA_A),
            &bundle("batch", vec![delete(LA_A, "GONE"), delete(LA_A, "NEVER")]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(statuses(&answer), ["204 No Content", "204 No Content"]);
    let id = plan["id"].as_str().unwrap();
    let res = app
        .get(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A))
        .await;
    assert_eq!(res.status(), 410);
}

#[tokio::test]
async fn another_las_plan_in_an_upload_is_refused_for_that_entry() {
    let app = app_with_las().await;
    let entries = vec![
        upsert(&plan_json("9449306753", LA_A, "MINE")),
        upsert(&plan_json("9000000009", LA_B, "THEIRS")),
    ];
    let answer: Value = app
        .post("", &app.social(LA_A), &bundle("batch", entries.clone()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(statuses(&answer), ["201 Created", "403 Forbidden"]);
    assert_eq!(
        spine_code(&answer["entry"][1]["response"]["outcome"]),
        "ACCESS_DENIED"
    );
    let before = app.snapshot();
    let entries = vec![
        upsert(&plan_json("9912003888", LA_A, "MINE-2")),
        upsert(&plan_json("9000000009", LA_B, "THEIRS")),
    ];
    let res = app
        .post("", &app.social(LA_A), &bundle("transaction", entries))
        .await;
    let outcome = expect_outcome(res, 403, "ACCESS_DENIED").await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry[1]");
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn only_social_care_uploads() {
    let app = app_with_las().await;
    let upload = bundle("batch", vec![upsert(&plan_json("9449306753", LA_A, "X"))]);
    for token in [app.health(), app.ops()] {
        expect_outcome(app.post("", &token, &upload).await, 403, "ACCESS_DENIED").await;
    }
}

#[tokio::test]
async fn each_batch_is_kept_as_its_las_data_quality_report() {
    let app = app_with_las().await;
    let mut plans = three_plans();
    plans[2]["patient"]["identifier"]["value"] = json!("9449306754");
    let upload = bundle("batch", plans.iter().map(upsert).collect());
    let answer: Value = app
        .post("", &app.social(LA_A), &upload)
        .await
        .json()
        .await
        .unwrap();
    let counts = &answer["meta"]["extension"];
    assert_eq!(counts[0]["valueUnsignedInt"], 2, "accepted");
    assert_eq!(counts[1]["valueUnsignedInt"], 1, "rejected");
    let reports: Value = app
        .get("/Bundle?type=batch-response", &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reports["total"], 1);
    let report = &reports["entry"][0]["resource"];
    assert_eq!(report["id"], answer["id"]);
    assert_eq!(
        report["entry"][2]["response"]["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[2].resource.patient.identifier.value"
    );
    let id = report["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/Bundle/{id}"), &app.social(LA_A))
            .await
            .status(),
        200
    );
    let theirs: Value = app
        .get("/Bundle?type=batch-response", &app.social(LA_B))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["total"], 0, "an LA sees only its own reports");
    expect_outcome(
        app.get(&format!("/Bundle/{id}"), &app.social(LA_B)).await,
        403,
        "ACCESS_DENIED",
    )
    .await;
    expect_outcome(
        app.get("/Bundle?type=batch-response", &app.health()).await,
        403,
        "ACCESS_DENIED",
    )
    .await;
    expect_outcome(
        app.get(&format!("/Bundle/{id}"), &app.health()).await,
        403,
        "ACCESS_DENIED",
    )
    .await;
}

#[tokio::test]
async fn an_upload_over_the_entry_limit_is_413_and_writes_nothing() {
    let app = app_with_las().await;
    let before = app.snapshot();
    let entries = (0..101)
        .map(|i| upsert(&plan_json("9449306753", LA_A, &format!("L-{i}"))))
        .collect();
    let res = app
        .post("", &app.social(LA_A), &bundle("batch", entries))
        .await;
    let outcome = expect_outcome(res, 413, "FAILURE_TO_PROCESS_MESSAGE").await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.entry");
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn a_bundle_that_is_not_an_upload_is_refused() {
    let app = app_with_las().await;
    let searchset = json!({"resourceType": "Bundle", "type": "searchset"});
    let outcome = expect_outcome(
        app.post("", &app.social(LA_A), &searchset).await,
        422,
        "INVALID_VALUE",
    )
    .await;
    assert_eq!(outcome["issue"][0]["expression"][0], "Bundle.type");
    let plan = plan_json("9449306753", LA_A, "P");
    expect_outcome(
        app.post("", &app.social(LA_A), &plan).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    let bad_url = bundle(
        "batch",
        vec![json!({"resource": plan, "request": {"method": "PUT", "url": "Flag?identifier=a|b"}})],
    );
    let answer: Value = app
        .post("", &app.social(LA_A), &bad_url)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(statuses(&answer), ["422 Unprocessable Entity"]);
    assert_eq!(
        answer["entry"][0]["response"]["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[0].request.url"
    );
}

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
    let mut clients = Vec::new();
    for worker in 0..8usize {
        let uploading = uploading.clone();
        let children = looked_up.clone();
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
        clients.push(tokio::spawn(async move {
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
        }));
    }

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
