//! Access audit and access history (SPEC §3 AuditEvent): every clinician's access is recorded
//! before the answer, and both sides see the 25 most recent unscheduled accesses.

use cpis::validation::Profiles;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

const CHILD: &str = "9449306753";
const OTHER_CHILD: &str = "9000000009";

async fn app_with_children() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    app.create_plan(&plan_json(OTHER_CHILD, LA_B, "P-B1")).await;
    app
}

async fn look_up(app: &TestApp, token: &str, nhs: &str, headers: &[(&str, &str)]) -> u16 {
    app.send(
        Method::GET,
        &format!("/Flag?patient:identifier={NHS}|{nhs}"),
        token,
        None,
        headers,
    )
    .await
    .status()
    .as_u16()
}

async fn history(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app.get(&format!("/AuditEvent?{query}"), token).await;
    assert_eq!(res.status(), 200, "AuditEvent?{query}");
    res.json().await.unwrap()
}

fn events(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn person(event: &Value) -> &str {
    event["agent"][0]["who"]["identifier"]["value"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn a_clinicians_lookup_is_recorded_before_the_answer_with_who_role_and_organisation() {
    let app = app_with_children().await;
    assert_eq!(look_up(&app, &app.health(), CHILD, &[]).await, 200);
    // Committed before the response: visible at once, with no waiting.
    assert_eq!(app.count_rows("audit_events"), 1);
    let bundle = history(&app, &app.ops(), &format!("patient:identifier={CHILD}")).await;
    let event = &events(&bundle)[0];
    assert_eq!(
        Profiles::load()
            .unwrap()
            .validate("AuditEvent", "AuditEvent", event),
        vec![]
    );
    assert_eq!(event["subtype"][0]["code"], "search-type");
    assert_eq!(event["action"], "E");
    assert_eq!(event["agent"][0]["name"], "Jane Smith");
    assert_eq!(event["agent"][0]["role"][0]["text"], "Staff Nurse");
    assert_eq!(event["agent"][1]["who"]["identifier"]["value"], HOSPITAL);
    assert_eq!(event["entity"][0]["what"]["identifier"]["value"], CHILD);
    assert_eq!(
        event["entity"][0]["detail"][0]["valueString"],
        "unscheduled"
    );
    assert!(event["entity"][1]["what"]["reference"]
        .as_str()
        .unwrap()
        .starts_with("Flag/"));
}

#[tokio::test]
async fn a_read_vread_and_history_are_each_recorded_with_their_interaction() {
    let app = app_with_children().await;
    let flags = app.flags_of(CHILD).await;
    let id = flags["entry"][0]["resource"]["id"].as_str().unwrap();
    for (path, subtype) in [
        (format!("/EpisodeOfCare/{id}"), "read"),
        (format!("/EpisodeOfCare/{id}/_history/1"), "vread"),
        (format!("/EpisodeOfCare/{id}/_history"), "history-instance"),
    ] {
        // A new person each time, so the 24-hour collapse keeps every access in the history.
        let res = app.get(&path, &clinician(&app, subtype.len())).await;
        assert_eq!(res.status(), 200, "{path}");
        // Operations' history shows every access (the response is checked against the profile
        // and openapi.yaml on arrival).
        let bundle = history(&app, &app.ops(), &format!("patient:identifier={CHILD}")).await;
        let newest = &events(&bundle)[0];
        assert_eq!(newest["subtype"][0]["code"], subtype, "{path}");
        assert_eq!(newest["action"], "R", "{path}");
        assert_eq!(
            newest["entity"][1]["what"]["reference"],
            format!("EpisodeOfCare/{id}"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn looking_up_a_child_with_no_plan_records_nothing() {
    let app = app_with_children().await;
    assert_eq!(look_up(&app, &app.health(), "9912003888", &[]).await, 200);
    assert_eq!(app.count_rows("audit_events"), 0);
}

#[tokio::test]
async fn an_la_reading_its_own_plans_is_not_an_access() {
    let app = app_with_children().await;
    let res = app.get("/Flag", &app.social(LA_A)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count_rows("audit_events"), 0);
}

#[tokio::test]
async fn thirty_people_looking_shows_the_twenty_five_most_recent_newest_first() {
    let app = app_with_children().await;
    for n in 0..30 {
        assert_eq!(look_up(&app, &clinician(&app, n), CHILD, &[]).await, 200);
    }
    // The history search is itself an access, and the history includes it.
    let viewer = clinician(&app, 99);
    let bundle = history(&app, &viewer, &format!("patient:identifier={NHS}|{CHILD}")).await;
    let shown = events(&bundle);
    assert_eq!(shown.len(), 25);
    assert_eq!(bundle["total"], 25);
    assert!(bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["relation"] != "next"));
    assert_eq!(person(&shown[0]), "clinician-99");
    let people: Vec<&str> = shown.iter().skip(1).map(person).collect();
    let expected: Vec<String> = (6..30).rev().map(|n| format!("clinician-{n}")).collect();
    assert_eq!(people, expected, "the 24 most recent lookups, newest first");
    let recorded: Vec<&str> = shown
        .iter()
        .map(|e| e["recorded"].as_str().unwrap())
        .collect();
    assert!(recorded.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(app.count_rows("audit_events"), 31, "every access is kept");
}

#[tokio::test]
async fn repeated_views_by_the_same_person_within_a_day_count_once() {
    let app = app_with_children().await;
    let nurse = clinician(&app, 1);
    for _ in 0..3 {
        assert_eq!(look_up(&app, &nurse, CHILD, &[]).await, 200);
    }
    let la_view = history(
        &app,
        &app.social(LA_A),
        &format!("patient:identifier={CHILD}"),
    )
    .await;
    let shown = events(&la_view);
    assert_eq!(shown.len(), 1, "{la_view}");
    assert_eq!(person(&shown[0]), "clinician-1");
    // Operations see every access, uncollapsed.
    let all = history(&app, &app.ops(), &format!("patient:identifier={CHILD}")).await;
    assert_eq!(events(&all).len(), 3);
}

#[tokio::test]
async fn a_scheduled_access_is_recorded_but_not_shown_or_notified() {
    let app = app_with_children().await;
    assert_eq!(
        look_up(
            &app,
            &clinician(&app, 1),
            CHILD,
            &[("IsUnscheduledAccessEvent", "FALSE")]
        )
        .await,
        200
    );
    let la_view = history(
        &app,
        &app.social(LA_A),
        &format!("patient:identifier={CHILD}"),
    )
    .await;
    assert_eq!(events(&la_view).len(), 0);
    let all = history(&app, &app.ops(), &format!("patient:identifier={CHILD}")).await;
    let recorded = events(&all);
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0]["entity"][0]["detail"][0]["valueString"],
        "scheduled"
    );
    assert_eq!(app.count_rows("notification_outbox"), 0);
}

#[tokio::test]
async fn an_invalid_care_setting_header_is_400_precondition_failed_and_records_nothing() {
    let app = app_with_children().await;
    let res = app
        .send(
            Method::GET,
            &format!("/Flag?patient:identifier={CHILD}"),
            &app.health(),
            None,
            &[("IsUnscheduledAccessEvent", "maybe")],
        )
        .await;
    expect_outcome(res, 400, "PRECONDITION_FAILED").await;
    assert_eq!(app.count_rows("audit_events"), 0);
}

#[tokio::test]
async fn audit_events_cannot_be_created_changed_or_deleted() {
    let app = app_with_children().await;
    look_up(&app, &app.health(), CHILD, &[]).await;
    let all = history(&app, &app.ops(), "").await;
    let id = events(&all)[0]["id"].as_str().unwrap().to_string();
    let event = events(&all)[0].clone();
    for token in [app.ops(), app.social(LA_A), app.health()] {
        let create = app.post("/AuditEvent", &token, &event).await;
        expect_outcome(create, 405, "UNSUPPORTED_SERVICE").await;
        let update = app.put(&format!("/AuditEvent/{id}"), &token, &event).await;
        expect_outcome(update, 405, "UNSUPPORTED_SERVICE").await;
        let delete = app.delete(&format!("/AuditEvent/{id}"), &token).await;
        expect_outcome(delete, 405, "UNSUPPORTED_SERVICE").await;
    }
    assert_eq!(app.count_rows("audit_events"), 1);
}

#[tokio::test]
async fn an_la_sees_the_history_of_its_own_children_only() {
    let app = app_with_children().await;
    look_up(&app, &app.health(), CHILD, &[]).await;
    look_up(&app, &app.health(), OTHER_CHILD, &[]).await;
    let own = history(
        &app,
        &app.social(LA_A),
        &format!("patient:identifier={CHILD}"),
    )
    .await;
    assert_eq!(events(&own).len(), 1);
    let res = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.social(LA_B),
        )
        .await;
    expect_outcome(res, 403, "ACCESS_DENIED").await;
}

#[tokio::test]
async fn an_la_pulls_its_childrens_accesses_since_an_instant() {
    let app = app_with_children().await;
    look_up(&app, &clinician(&app, 1), CHILD, &[]).await;
    let first = history(&app, &app.social(LA_A), "").await;
    assert_eq!(events(&first).len(), 1);
    let since = events(&first)[0]["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(5));
    look_up(&app, &clinician(&app, 2), CHILD, &[]).await;
    look_up(&app, &clinician(&app, 3), OTHER_CHILD, &[]).await;
    let query = format!("_lastUpdated=gt{}", since.replace('+', "%2B"));
    let pulled = history(&app, &app.social(LA_A), &query).await;
    let new = events(&pulled);
    assert_eq!(new.len(), 1, "{pulled}");
    assert_eq!(person(&new[0]), "clinician-2");
    let b = history(&app, &app.social(LA_B), &query).await;
    assert_eq!(events(&b).len(), 1);
    assert_eq!(
        events(&b)[0]["entity"][0]["what"]["identifier"]["value"],
        OTHER_CHILD
    );
}

#[tokio::test]
async fn health_care_cannot_browse_the_access_history() {
    let app = app_with_children().await;
    let res = app.get("/AuditEvent", &app.health()).await;
    expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
    let res = app
        .get("/AuditEvent?patient:identifier=9449306754", &app.health())
        .await;
    expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
}

#[tokio::test]
async fn operations_reads_of_plans_are_recorded_for_governance_but_never_shown() {
    let app = app_with_children().await;
    let res = app
        .get(&format!("/Flag?patient:identifier={CHILD}"), &app.ops())
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count_rows("audit_events"), 1);
    let la_view = history(
        &app,
        &app.social(LA_A),
        &format!("patient:identifier={CHILD}"),
    )
    .await;
    assert_eq!(events(&la_view).len(), 0);
}

#[tokio::test]
async fn a_single_audit_event_is_readable_by_operations_and_the_childs_la_only() {
    let app = app_with_children().await;
    look_up(&app, &app.health(), CHILD, &[]).await;
    let id = events(&history(&app, &app.ops(), "").await)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/AuditEvent/{id}");
    assert_eq!(app.get(&path, &app.ops()).await.status(), 200);
    assert_eq!(app.get(&path, &app.social(LA_A)).await.status(), 200);
    expect_outcome(
        app.get(&path, &app.social(LA_B)).await,
        403,
        "ACCESS_DENIED",
    )
    .await;
    expect_outcome(app.get(&path, &app.health()).await, 403, "ACCESS_DENIED").await;
    expect_outcome(
        app.get("/AuditEvent/no-such-event", &app.ops()).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn concurrent_lookups_each_commit_their_own_audit_event() {
    let app = app_with_children().await;
    let tokens: Vec<String> = (0..40).map(|n| clinician(&app, n)).collect();
    let lookups = tokens.iter().map(|t| look_up(&app, t, CHILD, &[]));
    let statuses = futures::future::join_all(lookups).await;
    assert!(statuses.iter().all(|s| *s == 200));
    assert_eq!(app.count_rows("audit_events"), 40);
}

#[tokio::test]
async fn an_la_cannot_read_accesses_its_history_does_not_show() {
    let app = app_with_children().await;
    look_up(
        &app,
        &app.health(),
        CHILD,
        &[("IsUnscheduledAccessEvent", "false")],
    )
    .await;
    let id = events(&history(&app, &app.ops(), "").await)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .get(&format!("/AuditEvent/{id}"), &app.social(LA_A))
        .await;
    expect_outcome(res, 403, "ACCESS_DENIED").await;
}

#[tokio::test]
async fn a_child_without_a_visible_plan_shows_no_history_and_records_nothing() {
    let app = app_with_children().await;
    look_up(&app, &app.health(), CHILD, &[]).await;
    // The LA withdraws the plan: health-care no longer sees it, nor its past accesses.
    let plans: Value = app
        .get("/EpisodeOfCare", &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    let mut plan = plans["entry"][0]["resource"].clone();
    plan["status"] = serde_json::json!("entered-in-error");
    let id = plan["id"].as_str().unwrap().to_string();
    let res = app
        .put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &plan)
        .await;
    assert_eq!(res.status(), 200);
    let bundle = history(&app, &app.health(), &format!("patient:identifier={CHILD}")).await;
    assert_eq!(bundle["total"], 0);
    assert_eq!(
        app.count_rows("audit_events"),
        1,
        "the search was not an access"
    );
}

#[tokio::test]
async fn the_history_shown_to_health_care_names_no_plan_since_deleted_or_withdrawn() {
    let app = app_with_children().await;
    let kept = app.create_plan(&plan_json(CHILD, LA_B, "P-B2")).await;
    let mut withdrawn = app.create_plan(&plan_json(CHILD, LA_B, "P-B3")).await;
    look_up(&app, &clinician(&app, 1), CHILD, &[]).await;
    let named = |bundle: &Value| -> Vec<String> {
        events(bundle)
            .iter()
            .flat_map(|e| e["entity"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["what"]["reference"].as_str().map(str::to_string))
            .collect()
    };
    let before = history(&app, &app.health(), &format!("patient:identifier={CHILD}")).await;
    let withdrawn_id = withdrawn["id"].as_str().unwrap().to_string();
    assert!(named(&before).contains(&format!("Flag/{withdrawn_id}")));
    withdrawn["status"] = serde_json::json!("entered-in-error");
    app.put(
        &format!("/EpisodeOfCare/{withdrawn_id}"),
        &app.social(LA_B),
        &withdrawn,
    )
    .await;
    let after = history(&app, &app.health(), &format!("patient:identifier={CHILD}")).await;
    let names = named(&after);
    assert!(
        !names.iter().any(|n| n.ends_with(&withdrawn_id)),
        "{names:?}"
    );
    assert!(names.contains(&format!("Flag/{}", kept["id"].as_str().unwrap())));
    // Operations' governance view keeps the record as it was made.
    let governance = history(&app, &app.ops(), &format!("patient:identifier={CHILD}")).await;
    assert!(named(&governance).contains(&format!("Flag/{withdrawn_id}")));
}
