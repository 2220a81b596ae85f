//! Conditional create, update and delete: a plan found by its identifier.

use super::*;

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
