//! The result parameters (`_summary`, `_elements`, `_total`, `_pretty`, `_sort`, `_id`) and
//! lenient handling of the ones the server does not know.

use super::*;

#[tokio::test]
async fn summary_count_answers_the_total_only_and_the_lookup_is_still_recorded() {
    let app = app_with_child().await;
    let before = app.count_rows("audit_events");
    let res = app
        .get(&format!("{}&_summary=count", lookup()), &app.health())
        .await;
    assert_eq!(res.status(), 200);
    let bundle: Value = res.json().await.unwrap();
    assert_eq!(bundle["total"], 1);
    assert!(bundle.get("entry").is_none());
    assert!(bundle["link"][0]["url"]
        .as_str()
        .unwrap()
        .contains("_summary=count"));
    assert_eq!(app.count_rows("audit_events"), before + 1);
}

#[tokio::test]
async fn elements_and_summary_subset_the_matches_and_say_so() {
    let app = app_with_child().await;
    let bundle: Value = app
        .get(
            &format!("{}&_elements=period&_include=Flag:author", lookup()),
            &app.health(),
        )
        .await
        .json()
        .await
        .unwrap();
    let flag = &bundle["entry"][0]["resource"];
    assert_eq!(flag["resourceType"], "Flag");
    assert!(flag.get("period").is_some() && flag.get("status").is_some());
    assert!(flag.get("author").is_none(), "not asked for: {flag}");
    assert_eq!(flag["meta"]["tag"][0]["code"], "SUBSETTED");
    // The included Organization is whole.
    let la = &bundle["entry"][1]["resource"];
    assert_eq!(la["resourceType"], "Organization");
    assert!(la.get("telecom").is_some());
    let plans: Value = app
        .get("/EpisodeOfCare?_summary=true", &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    let plan = &plans["entry"][0]["resource"];
    assert!(plan.get("managingOrganization").is_some());
    assert_eq!(plan["meta"]["tag"][0]["code"], "SUBSETTED");
}

#[tokio::test]
async fn total_none_omits_the_total_and_pretty_indents() {
    let app = app_with_child().await;
    let res = app.get("/EpisodeOfCare?_total=none", &app.ops()).await;
    let bundle: Value = res.json().await.unwrap();
    assert!(bundle.get("total").is_none());
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 1);
    let text = app
        .get("/metadata?_pretty=true", &app.ops())
        .await
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("{\n  \""), "{}", &text[..20]);
}

#[tokio::test]
async fn an_invalid_result_parameter_is_400_and_records_nothing() {
    let app = app_with_child().await;
    let before = app.count_rows("audit_events");
    for query in [
        "_summary=everything",
        "_total=most",
        "_sort=status",
        "_elements=a.b",
    ] {
        let res = app
            .get(&format!("{}&{query}", lookup()), &app.health())
            .await;
        let outcome = expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
        let param = query.split('=').next().unwrap();
        assert_eq!(outcome["issue"][0]["expression"][0], param, "{query}");
    }
    assert_eq!(app.count_rows("audit_events"), before);
}

#[tokio::test]
async fn sort_orders_by_last_updated_or_date_either_way() {
    // The plans are written a second apart: `meta.lastUpdated` is kept to the millisecond, and
    // two writes in one millisecond tie (the order is then by id, whichever way the sort goes).
    let clock = cpis::clock::Clock::fixed(chrono::Utc::now().timestamp_millis());
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    for (reference, start) in [
        ("P-1", "2026-03-01"),
        ("P-2", "2026-01-01"),
        ("P-3", "2026-02-01"),
    ] {
        clock.set(clock.now_ms() + 1000);
        let mut plan = plan_json(CHILD, LA_A, reference);
        plan["period"]["start"] = start.into();
        app.create_plan(&plan).await;
    }
    let order = |bundle: &Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["resource"]["identifier"][0]["value"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    for (sort, expected) in [
        ("date", ["P-2", "P-3", "P-1"]),
        ("-date", ["P-1", "P-3", "P-2"]),
        ("_lastUpdated", ["P-1", "P-2", "P-3"]),
        ("-_lastUpdated", ["P-3", "P-2", "P-1"]),
    ] {
        let bundle: Value = app
            .get(
                &format!("/EpisodeOfCare?_sort={sort}&_count=2"),
                &app.social(LA_A),
            )
            .await
            .json()
            .await
            .unwrap();
        let mut seen = order(&bundle);
        // The next page keeps the order.
        let next = bundle["link"][1]["url"].as_str().unwrap();
        assert!(next.contains(&format!("_sort={sort}")), "{next}");
        let path = next.strip_prefix(&app.base).unwrap();
        let rest: Value = app.get(path, &app.social(LA_A)).await.json().await.unwrap();
        seen.extend(order(&rest));
        assert_eq!(seen, expected, "_sort={sort}");
    }
}

#[tokio::test]
async fn id_finds_resources_by_logical_id() {
    let app = app_with_child().await;
    let flags = app.flags_of(CHILD).await;
    let id = flags["entry"][0]["resource"]["id"].as_str().unwrap();
    let found: Value = app
        .get(&format!("/EpisodeOfCare?_id={id},unknown"), &app.ops())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], id);
}

#[tokio::test]
async fn lenient_handling_ignores_unknown_parameters_and_says_so() {
    let app = app_with_child().await;
    let strict = app.get("/EpisodeOfCare?colour=blue", &app.ops()).await;
    expect_outcome(strict, 400, "INVALID_SEARCH_DATA").await;
    let res = app
        .send(
            Method::GET,
            "/EpisodeOfCare?colour=blue&status=active",
            &app.ops(),
            None,
            &[("Prefer", "handling=lenient")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let bundle: Value = res.json().await.unwrap();
    assert_eq!(bundle["total"], 1);
    let outcome = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert_eq!(outcome["resource"]["issue"][0]["expression"][0], "colour");
    // The rules that protect the register still hold: health-care needs one NHS number.
    let res = app
        .send(
            Method::GET,
            "/Flag?colour=blue",
            &app.health(),
            None,
            &[("Prefer", "handling=lenient")],
        )
        .await;
    assert_eq!(res.status(), 400);
}
