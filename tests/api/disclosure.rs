//! What a clinician learns is recorded, and an LA sees only its own (SPEC §3): a search that
//! counts a child's plan without showing it is an access; a plan cannot move to another child;
//! another LA's plans answer the same whether live, withdrawn or deleted, and leave no trace in
//! what an LA is shown.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

const CHILD: &str = "9449306753";
const OTHER_CHILD: &str = "9000000009";

async fn app_with_child() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    app
}

/// The accesses an LA has been shown, by pull (every one, no collapse across children).
async fn pulled(app: &TestApp, la: &str) -> Vec<Value> {
    let res = app.get("/AuditEvent?_count=500", &app.social(la)).await;
    assert_eq!(res.status(), 200);
    let bundle: Value = res.json().await.unwrap();
    bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_search_that_counts_a_childs_plan_without_showing_it_is_a_recorded_access() {
    let app = app_with_child().await;
    let counting = [
        format!("/Flag?patient:identifier={NHS}|{CHILD}&_count=0"),
        format!("/EpisodeOfCare?patient:identifier={NHS}|{CHILD}&_count=0"),
        format!("/Flag?patient:identifier={NHS}|{CHILD}&_offset=7"),
        format!("/EpisodeOfCare?patient:identifier={NHS}|{CHILD}&type={CPP}&_count=0"),
        format!("/EpisodeOfCare?patient:identifier={NHS}|{CHILD}&organization:identifier={LA_A}&_offset=3"),
    ];
    for (n, path) in counting.iter().enumerate() {
        let before = app.count_rows("audit_events");
        // A new clinician each time: the LA is told of every one (no 24-hour collapse).
        let who = clinician(&app, n);
        let res = app.get(path, &who).await;
        assert_eq!(res.status(), 200, "{path}");
        let bundle: Value = res.json().await.unwrap();
        assert_eq!(bundle["total"], 1, "{path}");
        assert!(bundle.get("entry").is_none(), "{path}: nothing shown");
        assert_eq!(app.count_rows("audit_events"), before + 1, "{path}");
    }
    // HEAD and a search posted as a form are the same search.
    let before = app.count_rows("audit_events");
    let res = app
        .send(
            Method::HEAD,
            &format!("/Flag?patient:identifier={NHS}|{CHILD}&_count=0"),
            &clinician(&app, 90),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .post(app.url("/Flag/_search"))
        .bearer_auth(clinician(&app, 91))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("patient%3Aidentifier={NHS}%7C{CHILD}&_count=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.count_rows("audit_events"), before + 2);
    // Each counted access references the plan counted, and its LA was told of each one.
    let shown = pulled(&app, LA_A).await;
    assert_eq!(
        shown.len(),
        counting.len() + 2,
        "the LA heard of every count"
    );
    for event in &shown {
        assert_eq!(event["entity"][0]["what"]["identifier"]["value"], CHILD);
        assert!(
            event["entity"].as_array().unwrap().len() >= 2,
            "the counted plan or Flag is referenced: {event}"
        );
    }
    // A child with no plan counts nothing and records nothing.
    let before = app.count_rows("audit_events");
    let res = app
        .get(
            &format!("/Flag?patient:identifier={NHS}|{OTHER_CHILD}&_count=0"),
            &app.health(),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count_rows("audit_events"), before);
}

#[tokio::test]
async fn a_plans_patient_cannot_change_by_update_or_upload() {
    let app = app_with_child().await;
    let plan = app
        .get("/EpisodeOfCare?identifier=P-A1", &app.social(LA_A))
        .await
        .json::<Value>()
        .await
        .unwrap()["entry"][0]["resource"]
        .clone();
    let id = plan["id"].as_str().unwrap().to_string();
    let mut moved = plan.clone();
    moved["patient"]["identifier"]["value"] = OTHER_CHILD.into();
    let res = app
        .put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &moved)
        .await;
    let outcome = expect_outcome(res, 422, "FORBIDDEN_UPDATE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "EpisodeOfCare.patient"
    );
    // The daily upload's conditional update is refused the same way, at its entry.
    let system = plan_system(LA_A);
    let upload = serde_json::json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [{
            "resource": moved,
            "request": {"method": "PUT", "url": format!("EpisodeOfCare?identifier={system}|P-A1")}
        }]
    });
    let res = app.post("", &app.social(LA_A), &upload).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    let entry = &answer["entry"][0]["response"];
    assert!(
        entry["status"].as_str().unwrap().starts_with("422"),
        "{entry}"
    );
    assert_eq!(
        entry["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[0].resource.patient"
    );
    // No version ever named the other child: the plan's history holds one NHS number.
    let history: Value = app
        .get(&format!("/EpisodeOfCare/{id}/_history"), &app.health())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["total"], 1);
    let found: Value = app
        .get(
            &format!("/Flag?patient:identifier={NHS}|{OTHER_CHILD}"),
            &app.health(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 0);
}

#[tokio::test]
async fn another_las_plan_answers_403_whether_live_withdrawn_or_deleted() {
    let app = app_with_child().await;
    let live = app.create_plan(&plan_json(OTHER_CHILD, LA_A, "P-A2")).await;
    let withdrawn = app.create_plan(&plan_json(OTHER_CHILD, LA_A, "P-A3")).await;
    let deleted = app.create_plan(&plan_json(OTHER_CHILD, LA_A, "P-A4")).await;
    let id = |plan: &Value| plan["id"].as_str().unwrap().to_string();
    let mut entered_in_error = withdrawn.clone();
    entered_in_error["status"] = "entered-in-error".into();
    let res = app
        .put(
            &format!("/EpisodeOfCare/{}", id(&withdrawn)),
            &app.social(LA_A),
            &entered_in_error,
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .delete(
            &format!("/EpisodeOfCare/{}", id(&deleted)),
            &app.social(LA_A),
        )
        .await;
    assert_eq!(res.status(), 204);
    // Its own LA still sees the deleted plan as gone.
    let res = app
        .get(
            &format!("/EpisodeOfCare/{}", id(&deleted)),
            &app.social(LA_A),
        )
        .await;
    assert_eq!(res.status(), 410);
    let other = app.social(LA_B);
    for plan in [&live, &withdrawn, &deleted] {
        let plan_id = id(plan);
        for path in [
            format!("/EpisodeOfCare/{plan_id}"),
            format!("/EpisodeOfCare/{plan_id}/_history/1"),
            format!("/EpisodeOfCare/{plan_id}/_history"),
            format!("/Flag/{plan_id}"),
        ] {
            let res = app.get(&path, &other).await;
            expect_outcome(res, 403, "ACCESS_DENIED").await;
        }
        let res = app
            .delete(&format!("/EpisodeOfCare/{plan_id}"), &other)
            .await;
        expect_outcome(res, 403, "ACCESS_DENIED").await;
        let mut mine = plan.clone();
        mine["managingOrganization"]["identifier"]["value"] = LA_B.into();
        let res = app
            .put(&format!("/EpisodeOfCare/{plan_id}"), &other, &mine)
            .await;
        expect_outcome(res, 403, "ACCESS_DENIED").await;
    }
}

#[tokio::test]
async fn an_las_audit_events_reference_only_its_own_plans_and_flags() {
    let app = app_with_child().await;
    let theirs = app.create_plan(&plan_json(CHILD, LA_B, "P-B1")).await;
    let res = app
        .get(
            &format!("/Flag?patient:identifier={NHS}|{CHILD}"),
            &app.health(),
        )
        .await;
    assert_eq!(res.status(), 200);
    let everything: Value = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.ops(),
        )
        .await
        .json()
        .await
        .unwrap();
    let event = &everything["entry"][0]["resource"];
    assert_eq!(
        event["entity"].as_array().unwrap().len(),
        3,
        "operations see both Flags: {event}"
    );
    let theirs_ref = format!("Flag/{}", theirs["id"].as_str().unwrap());
    for (la, token) in [(LA_A, app.social(LA_A)), (LA_B, app.social(LA_B))] {
        let history: Value = app
            .get(&format!("/AuditEvent?patient:identifier={CHILD}"), &token)
            .await
            .json()
            .await
            .unwrap();
        let pull = pulled(&app, la).await;
        let read: Value = app
            .get(
                &format!("/AuditEvent/{}", event["id"].as_str().unwrap()),
                &token,
            )
            .await
            .json()
            .await
            .unwrap();
        for shown in [&history["entry"][0]["resource"], &pull[0], &read] {
            let references: Vec<&str> = shown["entity"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["what"]["reference"].as_str())
                .collect();
            assert_eq!(references.len(), 1, "{la}: only its own Flag: {shown}");
            assert_eq!(
                references[0] == theirs_ref,
                la == LA_B,
                "{la}: {references:?}"
            );
        }
    }
}
