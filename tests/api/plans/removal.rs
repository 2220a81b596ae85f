//! A plan deleted or withdrawn: gone for health care from every read, and for good.

use super::*;

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
