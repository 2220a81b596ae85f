//! Search (SPEC §4): NHS number lookups, _include, status as of today, paging, strictness.

use serde_json::{json, Value};

use crate::helpers::*;

async fn app_with_plans() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    app
}

#[tokio::test]
async fn a_clinician_finds_the_flag_and_the_las_phone_numbers_by_nhs_number() {
    let app = app_with_plans().await;
    let res = app
        .get(
            &format!("/Flag?patient:identifier={NHS}|9449306753&_include=Flag:author"),
            &app.health(),
        )
        .await;
    assert_eq!(res.status(), 200);
    let bundle: Value = res.fhir().await;
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 1, "total counts matches only");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["search"]["mode"], "match");
    assert_eq!(entries[0]["resource"]["resourceType"], "Flag");
    assert!(entries[0]["fullUrl"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(entries[1]["search"]["mode"], "include");
    let la = &entries[1]["resource"];
    assert_eq!(la["resourceType"], "Organization");
    assert_eq!(la["telecom"][0]["value"], "020 7000 0001");
    assert_eq!(la["telecom"][1]["use"], "mobile");
}

#[tokio::test]
async fn subject_identifier_is_an_alias_and_a_bare_number_matches_any_system() {
    let app = app_with_plans().await;
    for q in [
        "subject:identifier=9449306753",
        "patient:identifier=9449306753",
    ] {
        let bundle: Value = app
            .get(&format!("/Flag?{q}"), &app.health())
            .await
            .fhir()
            .await;
        assert_eq!(bundle["total"], 1, "{q}");
    }
}

#[tokio::test]
async fn episode_of_care_search_includes_the_managing_organization() {
    let app = app_with_plans().await;
    let bundle: Value = app
        .get(
            "/EpisodeOfCare?patient:identifier=9449306753&_include=EpisodeOfCare:organization",
            &app.health(),
        )
        .await
        .fhir()
        .await;
    assert_eq!(bundle["total"], 1);
    assert_eq!(
        bundle["entry"][1]["resource"]["identifier"][0]["value"],
        LA_A
    );
}

#[tokio::test]
async fn an_unknown_child_is_an_empty_searchset() {
    let app = app_with_plans().await;
    let res = app
        .get("/Flag?patient:identifier=9000000009", &app.health())
        .await;
    assert_eq!(res.status(), 200);
    let bundle: Value = res.fhir().await;
    assert_eq!(bundle["total"], 0);
    assert!(
        bundle.get("entry").is_none(),
        "no entries: no entry array (FHIR JSON)"
    );
}

#[tokio::test]
async fn an_invalid_nhs_number_is_400_invalid_search_data() {
    let app = app_with_plans().await;
    for q in [
        "9449306754",
        "944930675",
        "abcdefghij",
        "https://fhir.nhs.uk/Id/nhs-number|1234567890",
    ] {
        let res = app
            .get(&format!("/Flag?patient:identifier={q}"), &app.health())
            .await;
        expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
    }
}

#[tokio::test]
async fn health_care_search_without_nhs_number_is_400() {
    let app = app_with_plans().await;
    for path in [
        "/Flag",
        "/EpisodeOfCare",
        "/Flag?status=active",
        "/Flag?patient:identifier=9449306753,9000000009",
    ] {
        let res = app.get(path, &app.health()).await;
        expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
    }
}

#[tokio::test]
async fn unknown_or_unsupported_parameters_are_400() {
    let app = app_with_plans().await;
    for q in [
        // Flag has no date parameter to sort by.
        "_sort=date",
        "_summary=maybe",
        "name=x",
        "_include=Flag:subject",
        "status=maybe",
        "date=ap2026",
    ] {
        let res = app
            .get(
                &format!("/Flag?patient:identifier=9449306753&{q}"),
                &app.health(),
            )
            .await;
        expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
    }
}

#[tokio::test]
async fn flag_status_search_reflects_today() {
    let app = app_with_plans().await;
    let mut future = plan_json("9449306753", LA_A, "P-FUTURE");
    future["period"] = json!({"start": "2099-01-01"});
    app.create_plan(&future).await;
    let mut ended = plan_json("9449306753", LA_A, "P-ENDED");
    ended["period"] = json!({"start": "2020-01-01", "end": "2020-12-31"});
    app.create_plan(&ended).await;
    let by_status = |s: &'static str| {
        let app = &app;
        async move {
            let b: Value = app
                .get(
                    &format!("/Flag?patient:identifier=9449306753&status={s}"),
                    &app.health(),
                )
                .await
                .fhir()
                .await;
            b["total"].as_i64().unwrap()
        }
    };
    assert_eq!(by_status("active").await, 1);
    assert_eq!(by_status("inactive").await, 2);
    assert_eq!(by_status("active,inactive").await, 3);
    let all = app.flags_of("9449306753").await;
    let statuses: Vec<&str> = all["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "active").count(), 1);
}

#[tokio::test]
async fn results_are_paged_with_count_and_next_links() {
    let app = app_with_plans().await;
    for i in 2..=5 {
        app.create_plan(&plan_json("9449306753", LA_A, &format!("P-{i}")))
            .await;
    }
    let first: Value = app
        .get("/EpisodeOfCare?_count=2", &app.social(LA_A))
        .await
        .fhir()
        .await;
    assert_eq!(first["total"], 5);
    assert_eq!(first["entry"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = vec![];
    let mut page = first;
    loop {
        seen.extend(
            page["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string()),
        );
        let Some(next) = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        else {
            break;
        };
        page = app
            .client
            .get(next["url"].as_str().unwrap())
            .bearer_auth(app.social(LA_A))
            .send()
            .await
            .unwrap()
            .fhir()
            .await;
        assert_eq!(page["total"], 5);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "every plan exactly once across pages");
}

#[tokio::test]
async fn episode_of_care_can_be_searched_by_identifier_type_status_date_and_la() {
    let app = app_with_plans().await;
    let mut lac = plan_json("9000000009", LA_A, "L-1");
    lac["type"][0]["coding"][0]["code"] = json!(LAC);
    lac["period"] = json!({"start": "2025-03-01", "end": "2025-09-30"});
    lac["status"] = json!("finished");
    app.create_plan(&lac).await;
    let ops = app.ops();
    let total = |q: String| {
        let app = &app;
        let ops = ops.clone();
        async move {
            let res = app.get(&format!("/EpisodeOfCare?{q}"), &ops).await;
            assert_eq!(res.status(), 200, "{q}");
            res.fhir().await["total"].as_i64().unwrap()
        }
    };
    assert_eq!(
        total(format!("identifier={}|L-1", plan_system(LA_A))).await,
        1
    );
    assert_eq!(total("identifier=L-1".into()).await, 1);
    assert_eq!(total(format!("type={SNOMED}|{LAC}")).await, 1);
    assert_eq!(total("status=finished".into()).await, 1);
    assert_eq!(total("status=active,finished".into()).await, 2);
    assert_eq!(
        total("date=2025-06".into()).await,
        0,
        "eq: the month must contain the whole plan"
    );
    assert_eq!(total("date=2025".into()).await, 1);
    assert_eq!(total("date=ge2026-01-01".into()).await, 1);
    assert_eq!(total("date=lt2026-01-01".into()).await, 1);
    assert_eq!(total("date=eb2026-01-01".into()).await, 1);
    assert_eq!(
        total(format!("organization:identifier={ODS}|{LA_A}")).await,
        2
    );
    assert_eq!(total(format!("organization:identifier={LA_B}")).await, 0);
    assert_eq!(total("_lastUpdated=gt2020-01-01".into()).await, 2);
    assert_eq!(total("_lastUpdated=lt2020-01-01".into()).await, 0);
}

#[tokio::test]
async fn count_zero_returns_only_the_total_and_large_counts_are_clamped() {
    let app = app_with_plans().await;
    let b: Value = app
        .get("/EpisodeOfCare?_count=0", &app.ops())
        .await
        .fhir()
        .await;
    assert_eq!(b["total"], 1);
    assert!(
        b.get("entry").is_none(),
        "no entries: no entry array (FHIR JSON)"
    );
    // A clinician's count of a child's plans tells as much as the plans: it is an access.
    let b: Value = app
        .get(
            &format!("/Flag?patient:identifier={NHS}|9449306753&_count=0"),
            &app.health(),
        )
        .await
        .fhir()
        .await;
    assert_eq!(b["total"], 1);
    assert!(b.get("entry").is_none());
    let history: Value = app
        .get("/AuditEvent?patient:identifier=9449306753", &app.ops())
        .await
        .fhir()
        .await;
    assert_eq!(history["total"], 1, "the count was recorded");
    let event = &history["entry"][0]["resource"];
    assert_eq!(
        event["entity"][0]["what"]["identifier"]["value"],
        "9449306753"
    );
    assert!(event["entity"][1]["what"]["reference"]
        .as_str()
        .unwrap()
        .starts_with("Flag/"));
    let b: Value = app
        .get("/EpisodeOfCare?_count=100000", &app.ops())
        .await
        .fhir()
        .await;
    assert!(b["link"][0]["url"].as_str().unwrap().contains("_count=500"));
}
