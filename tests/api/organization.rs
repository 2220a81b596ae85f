//! Local authorities (Organization): operations registers them; an LA may change its phones.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn operations_registers_an_la_that_everyone_can_read_and_search() {
    let app = TestApp::spawn().await;
    let la = app.create_la(LA_A).await;
    let id = la["id"].as_str().unwrap();
    for token in [app.health(), app.social(LA_B), app.ops()] {
        assert_eq!(
            app.get(&format!("/Organization/{id}"), &token)
                .await
                .status(),
            200
        );
    }
    let by_ods: Value = app
        .get(
            &format!("/Organization?identifier={ODS}|{LA_A}"),
            &app.health(),
        )
        .await
        .fhir()
        .await;
    assert_eq!(by_ods["total"], 1);
    let by_name: Value = app
        .get("/Organization?name=local%20AUTH", &app.health())
        .await
        .fhir()
        .await;
    assert_eq!(by_name["total"], 1);
    let none: Value = app
        .get("/Organization?name=authority", &app.health())
        .await
        .fhir()
        .await;
    assert_eq!(none["total"], 0, "name matches from the start");
}

#[tokio::test]
async fn a_duplicate_ods_code_is_409() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let res = app.post("/Organization", &app.ops(), &la_json(LA_A)).await;
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn an_la_without_its_emergency_duty_phone_is_422() {
    let app = TestApp::spawn().await;
    let mut la = la_json(LA_A);
    la["telecom"].as_array_mut().unwrap().pop();
    let res = app.post("/Organization", &app.ops(), &la).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.fhir().await["issue"][0]["expression"][0],
        "Organization.telecom"
    );
    assert_eq!(app.count_rows("resources"), 0);
}

#[tokio::test]
async fn an_la_may_update_its_own_telecom_and_nothing_else() {
    let app = TestApp::spawn().await;
    let mut la = app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    let id = la["id"].as_str().unwrap().to_string();
    la["telecom"][1]["value"] = json!("0800 000 111");
    assert_eq!(
        app.put(&format!("/Organization/{id}"), &app.social(LA_B), &la)
            .await
            .status(),
        403
    );
    let res = app
        .put(&format!("/Organization/{id}"), &app.social(LA_A), &la)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.fhir().await["meta"]["versionId"], "2");
    la["name"] = json!("Renamed");
    assert_eq!(
        app.put(&format!("/Organization/{id}"), &app.social(LA_A), &la)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.put(&format!("/Organization/{id}"), &app.ops(), &la)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.put(&format!("/Organization/{id}"), &app.health(), &la)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn an_las_new_phone_number_reaches_the_clinician() {
    let app = TestApp::spawn().await;
    let mut la = app.create_la(LA_A).await;
    app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    la["telecom"][1]["value"] = json!("0800 123 456");
    assert_eq!(
        app.put(
            &format!("/Organization/{}", la["id"].as_str().unwrap()),
            &app.social(LA_A),
            &la
        )
        .await
        .status(),
        200
    );
    let bundle: Value = app
        .get(
            "/Flag?patient:identifier=9449306753&_include=Flag:author",
            &app.health(),
        )
        .await
        .fhir()
        .await;
    assert_eq!(
        bundle["entry"][1]["resource"]["telecom"][1]["value"],
        "0800 123 456"
    );
}

#[tokio::test]
async fn organizations_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let la = app.create_la(LA_A).await;
    let res = app
        .delete(
            &format!("/Organization/{}", la["id"].as_str().unwrap()),
            &app.ops(),
        )
        .await;
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn an_las_ods_code_cannot_be_changed_under_its_plans() {
    let app = TestApp::spawn().await;
    let la = app.create_la(LA_A).await;
    let id = la["id"].as_str().unwrap();
    app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let before = app.versions();
    let mut renamed = la.clone();
    renamed["identifier"][0]["value"] = json!("E09000099");
    let res = app
        .put(&format!("/Organization/{id}"), &app.ops(), &renamed)
        .await;
    let outcome = expect_outcome(res, 422, "FORBIDDEN_UPDATE").await;
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Organization.identifier"
    );
    assert_eq!(app.versions(), before, "nothing changed");
    // The plan's Flag still names its LA, and a new LA cannot take the old code.
    let flags = app.flags_of("9449306753").await;
    assert_eq!(
        flags["entry"][0]["resource"]["author"]["reference"],
        format!("Organization/{id}")
    );
    assert_eq!(
        app.post("/Organization", &app.ops(), &la_json(LA_A))
            .await
            .status(),
        409
    );
}
