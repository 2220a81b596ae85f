//! Governance reports (SPEC §2 `governance`): a Privacy Officer or Caldicott Guardian asks who
//! looked at a child (Patient Access) or what a user or organisation looked at (User Access),
//! over at most a month, as JSON or CSV; reads nothing else; and is recorded asking.

use chrono::{TimeZone, Utc};
use cpis::auth::Role;
use cpis::clock::Clock;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

const CHILD: &str = "9449306753";
const OTHER_CHILD: &str = "9000000009";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn officer(app: &TestApp) -> String {
    let mut req = token_request(Role::Governance, "X26");
    req.sub = "privacy-officer-1".into();
    req.name = Some("Pat Officer".into());
    req.job_role = Some("Privacy Officer".into());
    app.token_for(&req)
}

/// A clinician `sub` at `org` with `job_role` looks `nhs` up.
async fn looks_up(app: &TestApp, sub: &str, org: &str, job_role: &str, nhs: &str, scheduled: bool) {
    let mut req = token_request(Role::HealthCare, org);
    req.sub = sub.into();
    req.job_role = Some(job_role.into());
    let headers: &[(&str, &str)] = if scheduled {
        &[("IsUnscheduledAccessEvent", "false")]
    } else {
        &[]
    };
    let res = app
        .send(
            Method::GET,
            &format!("/Flag?patient:identifier={nhs}"),
            &app.token_for(&req),
            None,
            headers,
        )
        .await;
    assert_eq!(res.status(), 200);
}

/// Two children of LA A; accesses on 30 October, 3, 10 and 29 November and 2 December 2026
/// (10:00 UTC), by three people at two settings, one of them scheduled and one a repeat
/// within 24 hours (collapsed in the history, but an access all the same).
async fn november() -> (TestApp, Clock) {
    let start = Utc.with_ymd_and_hms(2026, 10, 30, 10, 0, 0).unwrap();
    let clock = Clock::fixed(start.timestamp_millis());
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-1")).await;
    app.create_plan(&plan_json(OTHER_CHILD, LA_A, "P-2")).await;
    let day = |d: u32, m: u32| {
        Utc.with_ymd_and_hms(2026, m, d, 10, 0, 0)
            .unwrap()
            .timestamp_millis()
    };
    for (at, sub, org, nhs, scheduled) in [
        (day(30, 10), "nurse-1", "RJ1", CHILD, false),
        (day(3, 11), "nurse-1", "RJ1", CHILD, false),
        (day(3, 11) + 60_000, "nurse-1", "RJ1", CHILD, false),
        (day(10, 11), "nurse-2", "R1H", OTHER_CHILD, false),
        (day(10, 11) + 60_000, "gp-1", "RJ1", CHILD, true),
        (day(29, 11), "nurse-1", "R1H", OTHER_CHILD, false),
        (day(2, 12), "nurse-1", "RJ1", CHILD, false),
    ] {
        clock.set(at);
        looks_up(&app, sub, org, "Staff Nurse", nhs, scheduled).await;
    }
    clock.set(day(5, 12));
    (app, clock)
}

fn subjects(bundle: &Value) -> Vec<(String, String)> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let event = &e["resource"];
                    (
                        event["recorded"].as_str().unwrap()[..10].to_string(),
                        event["agent"][0]["who"]["identifier"]["value"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn report(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .get(&format!("/AuditEvent?{query}&_sort=date"), token)
        .await;
    assert_eq!(res.status(), 200, "{query}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn each_report_returns_exactly_the_accesses_in_its_period() {
    let (app, _) = november().await;
    let token = officer(&app);
    let november_days = "date=ge2026-11-01&date=le2026-11-30";
    let patient = report(
        &app,
        &token,
        &format!("patient:identifier={CHILD}&{november_days}"),
    )
    .await;
    assert_eq!(
        subjects(&patient),
        [
            ("2026-11-03".into(), "nurse-1".into()),
            ("2026-11-03".into(), "nurse-1".into()),
            ("2026-11-10".into(), "gp-1".into()),
        ],
        "every access to the child in November, scheduled and collapsed ones too"
    );
    let user = report(
        &app,
        &token,
        &format!("agent-identifier=https://fhir.nhs.uk/Id/sds-user-id|nurse-1&{november_days}"),
    )
    .await;
    assert_eq!(user["total"], 3);
    let children: Vec<&str> = user["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["entity"][0]["what"]["identifier"]["value"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(children, [CHILD, CHILD, OTHER_CHILD]);
    let organisation = report(
        &app,
        &token,
        &format!("agent-organization=R1H&{november_days}"),
    )
    .await;
    assert_eq!(
        subjects(&organisation),
        [
            ("2026-11-10".into(), "nurse-2".into()),
            ("2026-11-29".into(), "nurse-1".into()),
        ]
    );
    // Operations may ask the same questions, with no period needed.
    let everything = report(&app, &app.ops(), "agent-identifier=nurse-1").await;
    assert!(everything["total"].as_i64().unwrap() >= 5);
}

#[tokio::test]
async fn a_report_needs_a_subject_and_both_ends_of_a_period_of_at_most_31_days() {
    let (app, _) = november().await;
    let token = officer(&app);
    for query in [
        format!("patient:identifier={CHILD}&date=ge2026-11-01&date=le2026-12-03"),
        format!("patient:identifier={CHILD}&date=ge2026-11-01"),
        format!("patient:identifier={CHILD}&date=le2026-11-30"),
        format!("patient:identifier={CHILD}"),
        "date=ge2026-11-01&date=le2026-11-30".to_string(),
        "agent-identifier=https://example.org/other|nurse-1&date=ge2026-11-01&date=le2026-11-30"
            .to_string(),
    ] {
        let res = app.get(&format!("/AuditEvent?{query}"), &token).await;
        let outcome = expect_outcome(res, 400, "INVALID_SEARCH_DATA").await;
        assert!(
            outcome["issue"][0]["diagnostics"].as_str().is_some(),
            "{query}: {outcome}"
        );
    }
    // 31 days apart is a month: allowed.
    let res = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}&date=ge2026-11-01&date=le2026-12-02"),
            &token,
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn governance_reads_nothing_but_the_reports() {
    let (app, _) = november().await;
    let token = officer(&app);
    let plan: Value = app
        .get("/EpisodeOfCare?identifier=P-1", &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    let id = plan["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let org: Value = app
        .get("/Organization", &app.ops())
        .await
        .json()
        .await
        .unwrap();
    let org_id = org["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let event: Value = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.ops(),
        )
        .await
        .json()
        .await
        .unwrap();
    let event_id = event["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        format!("/Flag?patient:identifier={CHILD}"),
        format!("/EpisodeOfCare?patient:identifier={CHILD}"),
        format!("/EpisodeOfCare/{id}"),
        format!("/Flag/{id}"),
        format!("/EpisodeOfCare/{id}/_history"),
        "/Organization".to_string(),
        format!("/Organization/{org_id}"),
        format!("/AuditEvent/{event_id}"),
        "/Subscription".to_string(),
        "/Bundle?type=batch-response".to_string(),
    ] {
        let res = app.get(&path, &token).await;
        expect_outcome(res, 403, "ACCESS_DENIED").await;
    }
    let res = app
        .post(
            "/EpisodeOfCare/$validate",
            &token,
            &plan_json(CHILD, LA_A, "P-9"),
        )
        .await;
    expect_outcome(res, 403, "ACCESS_DENIED").await;
    let res = app
        .client
        .get(format!(
            "{}/cpis/FHIR/R4/CareTeam?patient:identifier={CHILD}",
            app.address
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the NHS views are for clinicians");
}

#[tokio::test]
async fn a_report_search_is_recorded_for_operations_and_nowhere_else() {
    let (app, _) = november().await;
    let token = officer(&app);
    let before = app.count_rows("audit_events");
    let query = format!("patient:identifier={CHILD}&date=ge2026-11-01&date=le2026-11-30");
    report(&app, &token, &query).await;
    report(
        &app,
        &token,
        "agent-organization=R1H&date=ge2026-11-01&date=le2026-11-30",
    )
    .await;
    assert_eq!(app.count_rows("audit_events"), before + 2);
    // Operations lists them with the other accesses, the officer as agent[0].
    let all: Value = app
        .get("/AuditEvent?_count=500", &app.ops())
        .await
        .json()
        .await
        .unwrap();
    let asked: Vec<&Value> = all["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|e| e["entity"][0]["detail"][0]["type"] == "report")
        .collect();
    assert_eq!(asked.len(), 2);
    let patient_report = asked
        .iter()
        .find(|e| e["entity"][0]["detail"][0]["valueString"] == "patient-access")
        .unwrap();
    assert_eq!(
        patient_report["agent"][0]["who"]["identifier"]["value"],
        "privacy-officer-1"
    );
    assert_eq!(
        patient_report["agent"][0]["role"][0]["text"],
        "Privacy Officer"
    );
    assert_eq!(
        patient_report["entity"][0]["what"]["identifier"]["value"],
        CHILD
    );
    let org_report = asked
        .iter()
        .find(|e| e["entity"][0]["detail"][0]["valueString"] == "organisation-access")
        .unwrap();
    assert_eq!(
        org_report["entity"][0]["what"]["identifier"]["system"],
        "https://fhir.nhs.uk/Id/ods-organization-code"
    );
    // Never in a report, a clinician's history, an LA's pull, or the outbox.
    let again = report(&app, &token, &query).await;
    assert!(again["entry"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["resource"]["entity"][0]["detail"][0]["type"] == "care-setting"));
    let history: Value = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.health(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["resource"]["agent"][0]["who"]["identifier"]["value"] != "privacy-officer-1"));
    let pull: Value = app
        .get("/AuditEvent?_count=500", &app.social(LA_A))
        .await
        .json()
        .await
        .unwrap();
    assert!(pull["entry"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["resource"]["agent"][0]["who"]["identifier"]["value"] != "privacy-officer-1"));
    assert_eq!(
        app.count_where(
            "audit_events",
            "accessor_role = 'governance' AND (shown OR told_las)"
        ),
        0
    );
}

#[tokio::test]
async fn a_report_as_csv_is_one_escaped_row_per_access_in_uk_time() {
    let start = Utc.with_ymd_and_hms(2026, 7, 1, 22, 30, 0).unwrap(); // 23:30 BST
    let clock = Clock::fixed(start.timestamp_millis());
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-1")).await;
    looks_up(
        &app,
        "nurse-1",
        "RJ1",
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        CHILD,
        false,
    )
    .await;
    clock.set(clock.now_ms() + DAY_MS);
    looks_up(&app, "nurse-2", "RJ1", "@SUM(1+1)", CHILD, true).await;
    let token = officer(&app);
    let query = format!("patient:identifier={CHILD}&date=ge2026-07-01&date=le2026-07-31");
    let by_format = app
        .get(&format!("/AuditEvent?{query}&_format=csv"), &token)
        .await;
    assert_eq!(by_format.status(), 200);
    assert!(by_format.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = by_format.text().await.unwrap();
    let by_accept = app
        .client
        .get(app.url(&format!("/AuditEvent?{query}")))
        .bearer_auth(&token)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(by_accept.status(), 200);
    assert_eq!(by_accept.text().await.unwrap(), csv, "the same report");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "time_uk,nhs_number,care_setting,user_id,user_name,job_role,job_role_code,organisation_code,organisation_name,interaction"
    );
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("2026-07-01 23:30:00 BST,9449306753,unscheduled,nurse-1,Jane Smith,"),
        "{first}"
    );
    assert!(
        first.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\","),
        "a formula is written as text: {first}"
    );
    let second = lines.next().unwrap();
    assert!(second.contains(",scheduled,nurse-2,"), "{second}");
    assert!(second.contains(",'@SUM(1+1),"), "{second}");
    assert_eq!(
        lines.next(),
        None,
        "one row per access, the report search not among them"
    );
    // CSV is for the reports: a clinician asking for it is refused.
    let res = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}&_format=csv"),
            &app.health(),
        )
        .await;
    assert_eq!(res.status(), 406);
}
