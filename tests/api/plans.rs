//! Plans (EpisodeOfCare) and their Flags: create, read, vread, history, update, conditional
//! create/update/delete, deletion, withdrawal, and the errors of each.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

async fn app_with_las() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app
}

#[tokio::test]
async fn creating_a_plan_returns_201_with_location_etag_and_writes_its_flag() {
    let app = app_with_las().await;
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.social(LA_A),
            &plan_json("9449306753", LA_A, "P-1"),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "W/\"1\"");
    assert!(res.headers().contains_key("last-modified"));
    let plan: Value = res.fhir().await;
    let id = plan["id"].as_str().unwrap();
    assert_eq!(plan["meta"]["versionId"], "1");
    assert_eq!(
        plan["type"][0]["coding"][0]["display"],
        "Subject to child protection plan"
    );
    let flag: Value = app
        .get(&format!("/Flag/{id}"), &app.health())
        .await
        .fhir()
        .await;
    assert_eq!(flag["status"], "active");
    assert_eq!(flag["subject"]["identifier"]["value"], "9449306753");
    assert_eq!(flag["author"]["identifier"]["value"], LA_A);
    assert_eq!(
        flag["extension"][0]["valueReference"]["reference"],
        format!("EpisodeOfCare/{id}")
    );
}

#[tokio::test]
async fn the_location_header_points_at_the_new_version() {
    let app = app_with_las().await;
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.social(LA_A),
            &plan_json("9449306753", LA_A, "P-1"),
        )
        .await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let res = app
        .client
        .get(&location)
        .bearer_auth(app.social(LA_A))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_update_with_the_current_if_match_makes_version_2_and_updates_the_flag() {
    let app = app_with_las().await;
    let mut plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap().to_string();
    plan["status"] = json!("finished");
    plan["period"]["end"] = json!("2026-03-01");
    let path = format!("/EpisodeOfCare/{id}");
    let res = app
        .send(
            Method::PUT,
            &path,
            &app.social(LA_A),
            Some(&plan),
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "W/\"2\"");
    let flag: Value = app
        .get(&format!("/Flag/{id}"), &app.health())
        .await
        .fhir()
        .await;
    assert_eq!(flag["status"], "inactive");
    assert_eq!(flag["meta"]["versionId"], "2");
    assert_eq!(flag["period"]["end"], "2026-03-01");
}

#[tokio::test]
async fn plan_update_with_stale_if_match_is_412_and_changes_nothing() {
    let app = app_with_las().await;
    let mut plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap().to_string();
    plan["status"] = json!("finished");
    let path = format!("/EpisodeOfCare/{id}");
    let token = app.social(LA_A);
    let if_match_1 = [("If-Match", "W/\"1\"")];
    let put = || app.send(Method::PUT, &path, &token, Some(&plan), &if_match_1);
    assert_eq!(put().await.status(), 200);
    let before = app.snapshot();
    let res = put().await;
    expect_outcome(res, 412, "RESOURCE_VERSION_MISMATCH").await;
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn an_unchanged_update_makes_no_new_version() {
    let app = app_with_las().await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap();
    let res = app
        .put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &plan)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "W/\"1\"");
}

#[tokio::test]
async fn vread_and_history_show_every_version() {
    let app = app_with_las().await;
    let mut plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap().to_string();
    plan["period"]["end"] = json!("2026-12-31");
    assert_eq!(
        app.put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &plan)
            .await
            .status(),
        200
    );
    let v1: Value = app
        .get(
            &format!("/EpisodeOfCare/{id}/_history/1"),
            &app.social(LA_A),
        )
        .await
        .fhir()
        .await;
    assert!(v1["period"].get("end").is_none());
    let history: Value = app
        .get(&format!("/EpisodeOfCare/{id}/_history"), &app.social(LA_A))
        .await
        .fhir()
        .await;
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 2);
    assert_eq!(history["entry"][0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(
        app.get(
            &format!("/EpisodeOfCare/{id}/_history/9"),
            &app.social(LA_A)
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.get(&format!("/Flag/{id}/_history"), &app.health())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_unknown_id_is_404_and_put_to_an_unknown_id_is_404() {
    let app = app_with_las().await;
    let res = app
        .get("/EpisodeOfCare/does-not-exist", &app.social(LA_A))
        .await;
    expect_outcome(res, 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(
        app.get("/Flag/does-not-exist", &app.health())
            .await
            .status(),
        404
    );
    let mut plan = plan_json("9449306753", LA_A, "P-1");
    plan["id"] = json!("does-not-exist");
    assert_eq!(
        app.put("/EpisodeOfCare/does-not-exist", &app.social(LA_A), &plan)
            .await
            .status(),
        404
    );
    assert_eq!(app.count_rows("resources"), 2, "only the two LAs");
}

#[tokio::test]
async fn a_deleted_plan_and_its_flag_are_410_and_gone_from_search() {
    let app = app_with_las().await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A))
            .await
            .status(),
        204
    );
    let res = app
        .get(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A))
        .await;
    expect_outcome(res, 410, "INVALIDATED_RESOURCE").await;
    assert_eq!(
        app.get(&format!("/Flag/{id}"), &app.health())
            .await
            .status(),
        410
    );
    assert_eq!(app.flags_of("9449306753").await["total"], 0);
    // Deleting again is idempotent; the identifier may be used again.
    assert_eq!(
        app.delete(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A))
            .await
            .status(),
        204
    );
    app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
}

/// The statuses health-care gets from read, vread and instance history of a plan and its Flag.
async fn what_health_care_gets(app: &TestApp, id: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for ty in ["EpisodeOfCare", "Flag"] {
        for path in [
            format!("/{ty}/{id}"),
            format!("/{ty}/{id}/_history/1"),
            format!("/{ty}/{id}/_history"),
        ] {
            statuses.push(app.get(&path, &app.health()).await.status().as_u16());
        }
    }
    statuses
}

#[tokio::test]
async fn a_deleted_plan_is_gone_for_health_care_from_every_read_its_history_included() {
    let app = app_with_las().await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap();
    assert_eq!(what_health_care_gets(&app, id).await, vec![200; 6]);
    app.delete(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A))
        .await;
    assert_eq!(what_health_care_gets(&app, id).await, vec![410; 6]);
    // The LA that deleted it still sees its history (the deletion included).
    let history: Value = app
        .get(&format!("/EpisodeOfCare/{id}/_history"), &app.social(LA_A))
        .await
        .fhir()
        .await;
    assert_eq!(history["total"], 2);
}

#[tokio::test]
async fn a_withdrawn_plan_is_found_by_no_read_of_health_care() {
    let app = app_with_las().await;
    let mut plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap().to_string();
    plan["status"] = json!("entered-in-error");
    app.put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &plan)
        .await;
    assert_eq!(what_health_care_gets(&app, &id).await, vec![404; 6]);
}

#[tokio::test]
async fn a_duplicate_identifier_is_409_at_episode_of_care_identifier() {
    let app = app_with_las().await;
    app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let before = app.snapshot();
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.social(LA_A),
            &plan_json("9000000009", LA_A, "P-1"),
        )
        .await;
    let outcome = expect_outcome(res, 409, "INVALID_VALUE").await;
    assert_eq!(outcome["issue"][0]["code"], "duplicate");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "EpisodeOfCare.identifier"
    );
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn conditional_create_returns_the_existing_plan() {
    let app = app_with_las().await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let condition = format!("identifier={}|P-1", plan_system(LA_A));
    let res = app
        .send(
            Method::POST,
            "/EpisodeOfCare",
            &app.social(LA_A),
            Some(&plan_json("9449306753", LA_A, "P-1")),
            &[("If-None-Exist", &condition)],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.fhir().await["id"], plan["id"]);
}

#[tokio::test]
async fn twenty_concurrent_conditional_creates_make_one_plan() {
    let app = app_with_las().await;
    let token = app.social(LA_A);
    let body = plan_json("9449306753", LA_A, "P-RACE");
    let condition = format!("identifier={}|P-RACE", plan_system(LA_A));
    let if_none_exist = [("If-None-Exist", condition.as_str())];
    let requests = (0..20).map(|_| {
        app.send(
            Method::POST,
            "/EpisodeOfCare",
            &token,
            Some(&body),
            &if_none_exist,
        )
    });
    let responses = futures::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for res in responses {
        let status = res.status().as_u16();
        assert!(status == 200 || status == 201, "status {status}");
        created += usize::from(status == 201);
        ids.insert(res.fhir().await["id"].as_str().unwrap().to_string());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let all: Value = app
        .get("/EpisodeOfCare", &app.social(LA_A))
        .await
        .fhir()
        .await;
    assert_eq!(all["total"], 1);
    assert_eq!(app.flags_of("9449306753").await["total"], 1);
}

#[tokio::test]
async fn conditional_update_creates_then_updates_by_identifier() {
    let app = app_with_las().await;
    let path = format!("/EpisodeOfCare?identifier={}|P-9", plan_system(LA_A));
    let mut plan = plan_json("9449306753", LA_A, "P-9");
    let res = app.put(&path, &app.social(LA_A), &plan).await;
    assert_eq!(res.status(), 201);
    let id = res.fhir().await["id"].clone();
    // Re-sending the same plan changes nothing.
    let res = app.put(&path, &app.social(LA_A), &plan).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "W/\"1\"");
    plan["status"] = json!("cancelled");
    let res = app.put(&path, &app.social(LA_A), &plan).await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.fhir().await;
    assert_eq!(updated["id"], id);
    assert_eq!(updated["meta"]["versionId"], "2");
    // Another LA cannot take it over.
    let res = app.put(&path, &app.social(LA_B), &plan).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn conditional_delete_removes_the_plan_with_that_identifier() {
    let app = app_with_las().await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let path = format!("/EpisodeOfCare?identifier={}|P-1", plan_system(LA_A));
    assert_eq!(app.delete(&path, &app.social(LA_B)).await.status(), 403);
    assert_eq!(app.delete(&path, &app.social(LA_A)).await.status(), 204);
    assert_eq!(
        app.get(
            &format!("/EpisodeOfCare/{}", plan["id"].as_str().unwrap()),
            &app.social(LA_A)
        )
        .await
        .status(),
        410
    );
    assert_eq!(
        app.delete(&path, &app.social(LA_A)).await.status(),
        204,
        "no match: nothing to do"
    );
}

#[tokio::test]
async fn a_withdrawn_plan_is_hidden_from_health_care_at_once_and_cannot_be_reactivated() {
    let app = app_with_las().await;
    let mut plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap().to_string();
    plan["status"] = json!("entered-in-error");
    assert_eq!(
        app.put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &plan)
            .await
            .status(),
        200
    );
    assert_eq!(app.flags_of("9449306753").await["total"], 0);
    assert_eq!(
        app.get(&format!("/EpisodeOfCare/{id}"), &app.health())
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&format!("/Flag/{id}"), &app.health())
            .await
            .status(),
        404
    );
    let seen: Value = app
        .get(&format!("/Flag/{id}"), &app.social(LA_A))
        .await
        .fhir()
        .await;
    assert_eq!(seen["status"], "entered-in-error");
    plan["status"] = json!("active");
    let res = app
        .put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &plan)
        .await;
    let outcome = expect_outcome(res, 422, "FORBIDDEN_UPDATE").await;
    assert_eq!(outcome["issue"][0]["expression"][0], "EpisodeOfCare.status");
}

#[tokio::test]
async fn a_plan_of_an_unknown_la_is_422_at_the_managing_organization() {
    let app = app_with_las().await;
    let before = app.snapshot();
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.social("E06000001"),
            &plan_json("9449306753", "E06000001", "P-1"),
        )
        .await;
    let outcome = expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "EpisodeOfCare.managingOrganization.identifier.value"
    );
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn an_invalid_plan_is_422_naming_every_element_and_writes_nothing() {
    let app = app_with_las().await;
    let mut plan = plan_json("9449306754", LA_A, "P-1");
    plan["reason"] = json!([{"text": "neglect"}]);
    plan["period"] = json!({"end": "2026-01-01"});
    let before = app.snapshot();
    let res = app.post("/EpisodeOfCare", &app.social(LA_A), &plan).await;
    assert_eq!(res.status(), 422);
    let outcome: Value = res.fhir().await;
    let found: Vec<(String, String)> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["details"]["coding"][0]["code"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                i["expression"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        found.contains(&(
            "ADDITIONAL_PROPERTIES".into(),
            "EpisodeOfCare.reason".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&("MISSING_VALUE".into(), "EpisodeOfCare.period.start".into())),
        "{found:?}"
    );
    assert_eq!(app.snapshot(), before);
    // A bad check digit alone is INVALID_VALUE at the NHS number.
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.social(LA_A),
            &plan_json("9449306754", LA_A, "P-1"),
        )
        .await;
    let outcome: Value = res.fhir().await;
    assert_eq!(spine_code(&outcome), "INVALID_VALUE");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "EpisodeOfCare.patient.identifier.value"
    );
}

#[tokio::test]
async fn a_body_that_is_not_a_plan_is_400() {
    let app = app_with_las().await;
    for body in [
        json!([1, 2]),
        json!({"resourceType": "Patient"}),
        json!({"status": "active"}),
    ] {
        let res = app.post("/EpisodeOfCare", &app.social(LA_A), &body).await;
        assert_eq!(res.status(), 400, "{body}");
    }
    let res = app
        .client
        .post(app.url("/EpisodeOfCare"))
        .bearer_auth(app.social(LA_A))
        .header("Content-Type", "application/fhir+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let mut plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    plan["id"] = json!("another-id");
    let res = app
        .put("/EpisodeOfCare/does-not-match", &app.social(LA_A), &plan)
        .await;
    assert_eq!(res.status(), 400, "body id must match the URL");
}

#[tokio::test]
async fn flags_cannot_be_written_through_the_api() {
    let app = app_with_las().await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap();
    let flag: Value = app
        .get(&format!("/Flag/{id}"), &app.social(LA_A))
        .await
        .fhir()
        .await;
    for (method, path) in [
        (Method::POST, "/Flag".to_string()),
        (Method::PUT, format!("/Flag/{id}")),
        (Method::DELETE, format!("/Flag/{id}")),
    ] {
        let res = app
            .request(method.clone(), &path, Some(&app.social(LA_A)), Some(&flag))
            .await;
        expect_outcome(res, 405, "UNSUPPORTED_SERVICE").await;
    }
}

#[tokio::test]
async fn prefer_return_minimal_sends_no_body() {
    let app = app_with_las().await;
    let res = app
        .send(
            Method::POST,
            "/EpisodeOfCare",
            &app.social(LA_A),
            Some(&plan_json("9449306753", LA_A, "P-1")),
            &[("Prefer", "return=minimal")],
        )
        .await;
    assert_eq!(res.status(), 201);
    assert!(res.headers().contains_key("location"));
    assert!(res.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unborn_child_plan_is_held_against_the_mothers_nhs_number() {
    let app = app_with_las().await;
    let mut plan = plan_json("9912003888", LA_B, "U-1");
    plan["type"][0]["coding"][0]["code"] = json!(UCPP);
    app.create_plan(&plan).await;
    let flags = app.flags_of("9912003888").await;
    assert_eq!(
        flags["entry"][0]["resource"]["code"]["text"],
        "Unborn child subject to child protection plan"
    );
}
