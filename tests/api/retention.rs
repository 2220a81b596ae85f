//! Retention (SPEC §7), with the clock as a parameter (no sleeping): plans leave the register
//! 12 months after they end, AuditEvents after 96 months; `cpis purge` does the same on demand.

use std::process::Command;

use chrono::{DateTime, Months};
use cpis::retention::{purge, Purged, RetentionPolicy};
use serde_json::{json, Value};

use crate::helpers::*;

const POLICY: RetentionPolicy = RetentionPolicy {
    plan_months: 12,
    audit_months: 96,
};

fn at(instant: &str) -> i64 {
    DateTime::parse_from_rfc3339(instant)
        .unwrap()
        .timestamp_millis()
}

fn ended_plan(nhs: &str, reference: &str, end: &str) -> Value {
    let mut plan = plan_json(nhs, LA_A, reference);
    plan["status"] = json!("finished");
    plan["period"] = json!({"start": "2023-06-01", "end": end});
    plan
}

async fn status_of(app: &TestApp, path: &str) -> u16 {
    app.get(path, &app.social(LA_A)).await.status().as_u16()
}

fn purge_at(app: &TestApp, now: i64) -> Purged {
    let mut conn = app.pool.get().unwrap();
    purge(&mut conn, POLICY, now).unwrap()
}

#[tokio::test]
async fn a_plan_ended_13_months_ago_is_purged_and_one_ended_11_months_ago_is_kept() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let old = app
        .create_plan(&ended_plan("9449306753", "OLD", "2025-01-10"))
        .await;
    let recent = app
        .create_plan(&ended_plan("9000000009", "RECENT", "2025-03-10"))
        .await;
    // 2026-02-10: 13 months after the first plan ended, 11 after the second.
    let purged = purge_at(&app, at("2026-02-10T12:00:00Z"));
    assert_eq!(purged.plans, 1);
    let (old_id, recent_id) = (old["id"].as_str().unwrap(), recent["id"].as_str().unwrap());
    for path in [
        format!("/EpisodeOfCare/{old_id}"),
        format!("/Flag/{old_id}"),
        format!("/EpisodeOfCare/{old_id}/_history"),
    ] {
        assert_eq!(status_of(&app, &path).await, 404, "{path}");
    }
    assert_eq!(
        status_of(&app, &format!("/EpisodeOfCare/{recent_id}")).await,
        200
    );
    assert_eq!(status_of(&app, &format!("/Flag/{recent_id}")).await, 200);
    let left: Value = app
        .get("/EpisodeOfCare", &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(left["total"], 1);
    // Nothing of the purged plan is left behind, not even its index rows.
    let rows_per_plan = app.count_rows("search_tokens");
    assert_eq!(
        purge_at(&app, at("2026-02-10T12:00:00Z")),
        Purged::default()
    );
    assert_eq!(app.count_rows("search_tokens"), rows_per_plan);
    assert_eq!(
        app.count_rows("unique_identifiers"),
        2,
        "the LA and the kept plan"
    );
}

#[tokio::test]
async fn an_open_ended_plan_is_kept_until_it_is_closed() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let active = app
        .create_plan(&plan_json("9449306753", LA_A, "OPEN"))
        .await;
    let mut cancelled = plan_json("9000000009", LA_A, "CANCELLED");
    cancelled["status"] = json!("cancelled");
    app.create_plan(&cancelled).await;
    let now = cpis::clock::Clock::system().now_ms();
    let later = |months| {
        DateTime::from_timestamp_millis(now)
            .unwrap()
            .checked_add_months(Months::new(months))
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(purge_at(&app, later(11)).plans, 0);
    assert_eq!(purge_at(&app, later(13)).plans, 1, "the cancelled plan");
    let id = active["id"].as_str().unwrap();
    assert_eq!(status_of(&app, &format!("/EpisodeOfCare/{id}")).await, 200);
}

#[tokio::test]
async fn audit_events_are_kept_96_months() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json("9449306753", LA_A, "P")).await;
    app.flags_of("9449306753").await;
    assert_eq!(app.count_rows("audit_events"), 1);
    let now = cpis::clock::Clock::system().now_ms();
    let later = |months| {
        DateTime::from_timestamp_millis(now)
            .unwrap()
            .checked_add_months(Months::new(months))
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(purge_at(&app, later(95)).audit_events, 0);
    assert_eq!(purge_at(&app, later(97)).audit_events, 1);
    assert_eq!(app.count_rows("audit_events"), 0);
    assert_eq!(app.count_rows("audit_las"), 0, "with what hangs off them");
}

#[tokio::test]
async fn cpis_purge_purges_on_demand_and_prints_the_counts() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_plan(&ended_plan("9449306753", "OLD", "2025-01-10"))
        .await;
    let output = Command::new(env!("CARGO_BIN_EXE_cpis"))
        .args(["purge", "--now", "2026-02-10T12:00:00Z"])
        .env_clear()
        .env("CPIS_DATABASE_URL", &app.config.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "purged plans=1 audit_events=0 reports=0"
    );
    assert_eq!(app.count_rows("resources"), 1, "only the LA is left");
}

#[tokio::test]
async fn a_closed_plan_with_an_end_is_kept_until_12_months_after_that_end() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    // Finished today, with the end the LA recorded: 31 March next year.
    let now = chrono::Utc::now();
    let end = (now + chrono::Duration::days(120)).date_naive();
    let plan = app
        .create_plan(&ended_plan("9449306753", "CLOSED", &end.to_string()))
        .await;
    let id = plan["id"].as_str().unwrap();
    // 13 months after it was closed, but not yet 12 after its end: kept.
    let thirteen_months_on = (now + Months::new(13)).timestamp_millis();
    assert_eq!(purge_at(&app, thirteen_months_on).plans, 0);
    assert_eq!(status_of(&app, &format!("/EpisodeOfCare/{id}")).await, 200);
    // Two days past 12 months after its end: purged.
    let past_its_end = (end + Months::new(12) + chrono::Days::new(2))
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    assert_eq!(purge_at(&app, past_its_end).plans, 1);
    assert_eq!(status_of(&app, &format!("/EpisodeOfCare/{id}")).await, 404);
}

#[tokio::test]
async fn a_plan_reopened_after_it_was_found_expired_is_not_purged() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let mut plan = plan_json("9449306753", LA_A, "REOPENED");
    plan["status"] = json!("cancelled");
    let plan = app.create_plan(&plan).await;
    let id = plan["id"].as_str().unwrap().to_string();
    let later = (chrono::Utc::now() + Months::new(13)).timestamp_millis();
    let mut conn = app.pool.get().unwrap();
    let expired = cpis::retention::expired_plans(
        &mut conn,
        cpis::retention::PlanCutoff::new(later, POLICY.plan_months),
    )
    .unwrap();
    assert_eq!(expired.len(), 1, "found past retention");
    // The LA re-opens it before the purge removes it.
    let mut reopened = plan.clone();
    reopened["status"] = json!("active");
    let res = app
        .put(
            &format!("/EpisodeOfCare/{id}"),
            &app.social(LA_A),
            &reopened,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        cpis::retention::remove_unchanged(&mut conn, &expired).unwrap(),
        0
    );
    assert_eq!(status_of(&app, &format!("/EpisodeOfCare/{id}")).await, 200);
    assert_eq!(status_of(&app, &format!("/Flag/{id}")).await, 200);
    drop(conn);
    assert_eq!(purge_at(&app, later).plans, 0, "an open plan stays");
}
