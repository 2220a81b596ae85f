//! What the table's one-problem rows leave out: several problems answered together, and
//! `$validate` reporting what create refuses.

use serde_json::json;

use super::*;

#[tokio::test]
async fn several_problems_in_one_plan_are_all_reported_in_one_response() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let mut plan = plan_json("9000000008", UNKNOWN_LA, "P-1");
    plan["status"] = json!("planned");
    plan["reason"] = json!([{"text": "neglect"}]);
    plan["type"][0]["coding"][0]["display"] = json!("Child in need");
    plan["period"]["end"] = json!("2025-12-31");
    plan["patient"]["display"] = json!("A Child");
    let before = app.snapshot();
    let res = app
        .post("/EpisodeOfCare", &app.social(UNKNOWN_LA), &plan)
        .await;
    assert_eq!(res.status(), 422);
    let found = issues_of(&body(res).await);
    let expected = [
        ("invariant", "VALIDATION_ERROR", "EpisodeOfCare.period.end"),
        (
            "structure",
            "ADDITIONAL_PROPERTIES",
            "EpisodeOfCare.patient.display",
        ),
        ("structure", "ADDITIONAL_PROPERTIES", "EpisodeOfCare.reason"),
        (
            "value",
            "INVALID_VALUE",
            "EpisodeOfCare.managingOrganization.identifier.value",
        ),
        (
            "value",
            "INVALID_VALUE",
            "EpisodeOfCare.patient.identifier.value",
        ),
        ("value", "INVALID_VALUE", "EpisodeOfCare.status"),
        (
            "value",
            "INVALID_VALUE",
            "EpisodeOfCare.type[0].coding[0].display",
        ),
    ]
    .map(|(code, spine, expr)| (code.to_string(), spine.to_string(), Some(expr.to_string())));
    assert_eq!(found, expected);
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn validate_reports_an_unknown_managing_la_where_create_does() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let plan = plan_json("9449306753", UNKNOWN_LA, "P-1");
    let before = app.snapshot();
    for token in [app.social(UNKNOWN_LA), app.ops()] {
        let res = app.post("/EpisodeOfCare/$validate", &token, &plan).await;
        assert_eq!(res.status(), 200);
        let outcome = body(res).await;
        assert_eq!(outcome["issue"][0]["severity"], "error");
        assert_eq!(
            issues_of(&outcome),
            [(
                "value".to_string(),
                "INVALID_VALUE".to_string(),
                Some("EpisodeOfCare.managingOrganization.identifier.value".to_string())
            )]
        );
    }
    let res = app
        .post("/EpisodeOfCare", &app.social(UNKNOWN_LA), &plan)
        .await;
    let created = expect_outcome(res, 422, "INVALID_VALUE").await;
    assert_eq!(
        created["issue"][0]["expression"][0],
        "EpisodeOfCare.managingOrganization.identifier.value"
    );
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn validate_tells_social_care_that_another_las_plan_is_not_its_own() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    let plan = plan_json("9449306753", LA_A, "P-1");
    let before = app.snapshot();
    let res = app
        .post("/EpisodeOfCare/$validate", &app.social(LA_B), &plan)
        .await;
    assert_eq!(res.status(), 200, "reported, not refused");
    let outcome = body(res).await;
    assert_eq!(outcome["issue"][0]["severity"], "error");
    assert_eq!(
        issues_of(&outcome),
        [(
            "forbidden".to_string(),
            "ACCESS_DENIED".to_string(),
            Some("EpisodeOfCare.managingOrganization.identifier.value".to_string())
        )]
    );
    for token in [app.social(LA_A), app.ops()] {
        let res = app.post("/EpisodeOfCare/$validate", &token, &plan).await;
        assert_eq!(res.status(), 200);
        assert_eq!(body(res).await["issue"][0]["severity"], "information");
    }
    assert_eq!(app.snapshot(), before);
}
