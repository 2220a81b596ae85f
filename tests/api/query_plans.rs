//! Lookups are fast on the database as production has it: filled through the API, never
//! analysed by hand. Every statement a lookup runs (the search, its count and `_include`, the
//! access history, and the audit writer's checks) is captured as the server runs it, then its
//! query plan is asked of a SQLite database that has no planner statistics at all. No plan may
//! read a whole table (or walk a whole index in order) of the tables that grow with the
//! register.

use std::sync::Mutex;

use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use diesel::RunQueryDsl;

use crate::helpers::*;

/// Statements captured while the test runs, and what marks them as this test's.
static CAPTURED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static MARKERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The tables that grow with the register and with every access.
const LARGE_TABLES: &[&str] = &[
    "resources",
    "resource_versions",
    "search_tokens",
    "search_dates",
    "unique_identifiers",
    "audit_events",
    "audit_las",
    "notification_outbox",
];

fn recorder() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let text = query.to_string();
            let ours = MARKERS
                .lock()
                .map(|markers| markers.iter().any(|m| text.contains(m.as_str())))
                .unwrap_or(false);
            if ours {
                if let Ok(mut captured) = CAPTURED.lock() {
                    captured.push(text);
                }
            }
        }
    }))
}

#[derive(diesel::QueryableByName)]
struct PlanStep {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// The plan of `sql` (its bind parameters left unbound) on a database without statistics.
fn plan_of(conn: &mut cpis::db::DbConn, sql: &str) -> Vec<String> {
    let cpis::db::DbConn::Sqlite(c) = conn else {
        panic!("the plans are asked of SQLite");
    };
    diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load::<PlanStep>(c)
        .unwrap_or_else(|e| panic!("EXPLAIN QUERY PLAN {sql}: {e}"))
        .into_iter()
        .map(|s| s.detail)
        .collect()
}

/// A step that reads a whole large table, walks one of its indexes from end to end, or reads
/// every row of one resource type (an index searched on `resource_type` alone).
fn full_scan(step: &str) -> Option<&'static str> {
    let (verb, rest) = step.split_once(' ')?;
    let table = rest.split_whitespace().next()?;
    let large = LARGE_TABLES.iter().copied().find(|t| *t == table)?;
    let whole_type = rest.ends_with("(resource_type=?)");
    (verb == "SCAN" || (verb == "SEARCH" && whole_type)).then_some(large)
}

#[tokio::test]
async fn every_lookup_uses_its_index_on_a_database_that_was_never_analysed() {
    set_default_instrumentation(recorder).unwrap();
    let app = TestApp::spawn_on(Engine::Sqlite, |_| {}).await;
    let la = app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    // A child whose NHS number no other test uses: it marks this test's statements.
    let marker = cpis::fhir::NhsNumber::from_stem(654_321_987).unwrap();
    let nhs = marker.as_str();
    let upload = json_bundle(
        (0..40)
            .map(|i| {
                let child = if i == 0 { nhs.to_string() } else { nth_nhs(i) };
                plan_json(&child, LA_A, &format!("QP-{i}"))
            })
            .collect(),
    );
    let res = app.post("", &app.social(LA_A), &upload).await;
    assert_eq!(res.status(), 200);
    let la_id = la["id"].as_str().unwrap().to_string();
    MARKERS.lock().unwrap().extend([nhs.to_string(), la_id]);

    let by = |param: &str, include: &str| format!("?{param}={NHS}|{nhs}{include}");
    let lookups = [
        format!("/Flag{}", by("patient:identifier", "")),
        format!("/Flag{}", by("subject:identifier", "")),
        format!("/Flag{}", by("patient:identifier", "&_include=Flag:author")),
        format!("/Flag{}", by("subject:identifier", "&_include=Flag:author")),
        format!("/EpisodeOfCare{}", by("patient:identifier", "")),
        format!(
            "/EpisodeOfCare{}",
            by("patient:identifier", "&_include=EpisodeOfCare:organization")
        ),
        format!("/AuditEvent{}", by("patient:identifier", "")),
    ];
    for path in &lookups {
        // Audited (health-care, twice: the second meets the 24-hour check) and the LA's own.
        for token in [app.health(), app.health(), app.social(LA_A)] {
            let res = app.get(path, &token).await;
            assert_eq!(res.status(), 200, "{path}");
        }
    }
    MARKERS.lock().unwrap().clear();
    let statements: std::collections::BTreeSet<String> =
        std::mem::take(&mut *CAPTURED.lock().unwrap())
            .into_iter()
            .map(|s| s.split(" -- binds:").next().unwrap_or_default().to_string())
            .filter(|s| s.trim_start().starts_with("SELECT"))
            .collect();
    assert!(
        statements.len() >= 5,
        "the lookups' statements were captured: {statements:#?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut unanalysed =
        cpis::db::connect(&format!("sqlite://{}/plans.db", dir.path().display())).unwrap();
    cpis::db::migrate(&mut unanalysed).unwrap();
    let mut scans = Vec::new();
    for sql in &statements {
        let plan = plan_of(&mut unanalysed, sql);
        if let Some(table) = plan.iter().find_map(|step| full_scan(step)) {
            scans.push(format!("{table}: {sql}\n    {plan:?}"));
        }
    }
    assert!(
        scans.is_empty(),
        "statements that read a whole table:\n{}",
        scans.join("\n")
    );
    // The audit writer's one read walks only the accesses that decide (its partial index),
    // not the child's every access.
    let deciding: Vec<&String> = statements
        .iter()
        .filter(|s| s.contains("OR `audit_events`.`opens_attendance_hour`"))
        .collect();
    assert!(!deciding.is_empty(), "the writer's read was captured");
    for sql in deciding {
        let plan = plan_of(&mut unanalysed, sql);
        assert!(
            plan.iter()
                .any(|step| step.contains("INDEX audit_events_deciding")),
            "{sql}\n    {plan:?}"
        );
    }
}

/// The `i`-th valid NHS number after a fixed stem (not the marker child's).
fn nth_nhs(i: u64) -> String {
    (0..)
        .filter_map(|k| cpis::fhir::NhsNumber::from_stem(700_000_000 + i * 16 + k))
        .next()
        .map(|n| n.as_str().to_string())
        .unwrap()
}

fn json_bundle(plans: Vec<serde_json::Value>) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = plans
        .into_iter()
        .map(|plan| {
            let reference = plan["identifier"][0]["value"].as_str().unwrap().to_string();
            let system = plan["identifier"][0]["system"].as_str().unwrap().to_string();
            serde_json::json!({
                "resource": plan,
                "request": {"method": "PUT", "url": format!("EpisodeOfCare?identifier={system}|{reference}")}
            })
        })
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
}

#[test]
fn a_full_scan_is_told_from_an_index_search() {
    assert_eq!(
        full_scan("SCAN resources USING INDEX resources_by_last_updated"),
        Some("resources")
    );
    assert_eq!(full_scan("SCAN search_tokens"), Some("search_tokens"));
    assert_eq!(
        full_scan("SEARCH resources USING INDEX resources_by_last_updated (resource_type=?)"),
        Some("resources")
    );
    assert_eq!(
        full_scan("SEARCH search_tokens USING COVERING INDEX sqlite_autoindex_search_tokens_1 (resource_type=?)"),
        Some("search_tokens")
    );
    assert_eq!(
        full_scan(
            "SEARCH resources USING INDEX sqlite_autoindex_resources_1 (resource_type=? AND id=?)"
        ),
        None
    );
    assert_eq!(full_scan("SCAN subscriptions"), None);
}

#[derive(diesel::QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// An upload reads the plans its entries name by their identifiers, a part at a time. It finds
/// exactly the ones held, and on PostgreSQL, on a database never analysed, it probes the
/// identifiers' whole primary key: asked as `value = ANY(…)`, the planner (with default
/// selectivities for `resource_type` and `system`) read every identifier of the LA and
/// filtered them, so each part of an LA's first upload read all the plans before it.
#[tokio::test]
async fn an_upload_finds_the_plans_it_names_by_their_whole_identifier_on_a_database_never_analysed()
{
    use diesel::sql_types::{Array, Text};
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let upload = json_bundle(
        (0..80)
            .map(|i| plan_json(&nth_nhs(i), LA_A, &format!("WK-{i}")))
            .collect(),
    );
    assert_eq!(app.post("", &app.social(LA_A), &upload).await.status(), 200);

    let system = plan_system(LA_A);
    let named = |value: &str| (system.clone(), value.to_string());
    let mut conn = app.pool.get().unwrap();
    let mut found = cpis::db::store::find_by_identifiers(
        &mut conn,
        "EpisodeOfCare",
        &[named("WK-7"), named("WK-79"), named("WK-never-sent")],
    )
    .unwrap();
    found.sort();
    let values: Vec<&str> = found.iter().map(|(_, v, _)| v.as_str()).collect();
    assert_eq!(
        values,
        ["WK-7", "WK-79"],
        "the held identifiers, and only them"
    );
    assert_ne!(found[0].2, found[1].2, "each identifier's own plan");

    let cpis::db::DbConn::Postgres(pg) = &mut **conn else {
        // SQLite keeps its `IN` list, which it searches on the whole primary key whatever it
        // knows (`SEARCH unique_identifiers USING PRIMARY KEY (resource_type=? AND system=?
        // AND value=?)` on a database never analysed).
        return;
    };
    let plan: Vec<String> = diesel::sql_query(format!(
        "EXPLAIN {}",
        cpis::db::store::PG_IDENTIFIER_HOLDERS
    ))
    .bind::<Text, _>("EpisodeOfCare")
    .bind::<Text, _>(&system)
    .bind::<Array<Text>, _>(vec!["WK-7", "WK-79"])
    .load::<PgPlanLine>(pg)
    .unwrap()
    .into_iter()
    .map(|l| l.line)
    .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Cond") && plan.contains("(value = wanted.value)"),
        "each value probes the primary key:\n{plan}"
    );
    assert!(
        !plan.contains("Filter"),
        "no identifier is read to be filtered out:\n{plan}"
    );
}
