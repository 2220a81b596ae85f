//! LA uploads (SPEC §3 Bundle): transaction Bundles are all or nothing, batch Bundles keep
//! what is valid and report the rest, re-sending changes nothing, and each batch's response is
//! kept as the LA's data-quality report.

use serde_json::{json, Value};

use crate::helpers::*;

mod load;

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
