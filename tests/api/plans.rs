//! Plans (EpisodeOfCare) and their Flags: create, read, vread, history, update, conditional
//! create/update/delete, deletion, withdrawal, and the errors of each.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

mod conditional;
mod refusals;
mod removal;

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
