//! Repeated attendance (issue #13): a child seen at several unscheduled care settings within a
//! window of days is a pattern the responsible LA is told of — on every AuditEvent it receives,
//! and with `X-CPIS-Attendance-Pattern: true` on the notification of the access that first
//! reaches it. The clock is the test's: days pass without waiting.

use chrono::{TimeZone, Utc};
use cpis::auth::Role;
use cpis::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::process::ServerProcess;
use crate::receiver::{Received, Receiver};

mod edges;

const CHILD: &str = "9449306753";
const OTHER_CHILD: &str = "9000000009";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const EXTENSION: &str = "https://fhir.cpis.example.org/StructureDefinition/attendance-summary";

/// A child of LA A (and, with `both_las`, of LA B too) and LA B's other child; LA A (and B)
/// subscribed; a stepped dispatcher on a clock that starts 1 November 2026 at 10:00.
async fn setting(both_las: bool) -> (TestApp, Clock, Receiver, Receiver) {
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
    let clock = Clock::fixed(start.timestamp_millis());
    let app = TestApp::spawn_with(|c| {
        c.dispatcher = false;
        c.clock = clock.clone();
    })
    .await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    if both_las {
        app.create_plan(&plan_json(CHILD, LA_B, "P-B1")).await;
    }
    app.create_plan(&plan_json(OTHER_CHILD, LA_B, "P-B2")).await;
    let (a, b) = (Receiver::start(), Receiver::start());
    for (la, receiver) in [(LA_A, &a), (LA_B, &b)] {
        let subscription = json!({
            "resourceType": "Subscription", "status": "requested", "reason": "attendance",
            "criteria": "AuditEvent?",
            "channel": {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"}
        });
        assert_eq!(
            app.post("/Subscription", &app.social(la), &subscription)
                .await
                .status(),
            201
        );
    }
    (app, clock, a, b)
}

/// A clinician (one per setting and day) at `setting` looks the child up; then the day's
/// notifications go out.
async fn seen_at(app: &TestApp, clock: &Clock, setting: &str, nhs: &str, scheduled: bool) {
    let sub = format!("clinician-at-{setting}-{}", clock.now_ms());
    look_up_as(app, clock, &sub, setting, nhs, scheduled).await;
}

/// Person `sub` at `setting` looks `nhs` up (a scheduled or unscheduled visit); the clock
/// moves on a second and the notifications due go out.
async fn look_up_as(
    app: &TestApp,
    clock: &Clock,
    sub: &str,
    setting: &str,
    nhs: &str,
    scheduled: bool,
) {
    let mut req = token_request(Role::HealthCare, setting);
    req.sub = sub.to_string();
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
    clock.set(clock.now_ms() + 1000);
    app.deliver_pending().await;
}

/// (attendances, settings, windowDays, pattern, patternReached) of an AuditEvent, if it carries
/// the summary.
fn summary(event: &Value) -> Option<(u64, u64, u64, bool, bool)> {
    let ext = event["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == EXTENSION)?;
    let part = |name: &str| {
        ext["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["url"] == name)
            .unwrap()
            .clone()
    };
    Some((
        part("attendances")["valueUnsignedInt"].as_u64().unwrap(),
        part("settings")["valueUnsignedInt"].as_u64().unwrap(),
        part("windowDays")["valueUnsignedInt"].as_u64().unwrap(),
        part("pattern")["valueBoolean"].as_bool().unwrap(),
        part("patternReached")["valueBoolean"].as_bool().unwrap(),
    ))
}

fn flagged(note: &Received) -> bool {
    note.headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("x-cpis-attendance-pattern") && v == "true")
}

fn later(clock: &Clock, days: i64) {
    clock.set(clock.now_ms() + days * DAY_MS);
}

#[tokio::test]
async fn three_settings_within_thirty_days_mark_the_third_access_and_its_notification() {
    let (app, clock, la_a, _) = setting(false).await;
    seen_at(&app, &clock, "RJ1", CHILD, false).await;
    later(&clock, 9);
    seen_at(&app, &clock, "R1H", CHILD, false).await;
    later(&clock, 10);
    seen_at(&app, &clock, "RQX", CHILD, false).await;
    let notes = la_a.delivered();
    let summaries: Vec<_> = notes.iter().map(|n| summary(&n.body).unwrap()).collect();
    assert_eq!(
        summaries,
        [
            (1, 1, 30, false, false),
            (2, 2, 30, false, false),
            (3, 3, 30, true, true)
        ]
    );
    let headers: Vec<bool> = notes.iter().map(flagged).collect();
    assert_eq!(
        headers,
        [false, false, true],
        "only the access that reaches the pattern"
    );
}

#[tokio::test]
async fn the_same_setting_again_and_again_is_no_pattern() {
    let (app, clock, la_a, _) = setting(false).await;
    for _ in 0..3 {
        seen_at(&app, &clock, "RJ1", CHILD, false).await;
        later(&clock, 1);
    }
    let last = la_a.delivered().last().unwrap().clone();
    assert_eq!(summary(&last.body), Some((3, 1, 30, false, false)));
    assert!(la_a.delivered().iter().all(|n| !flagged(n)));
}

#[tokio::test]
async fn settings_spread_over_forty_days_are_no_pattern() {
    let (app, clock, la_a, _) = setting(false).await;
    seen_at(&app, &clock, "RJ1", CHILD, false).await;
    later(&clock, 20);
    seen_at(&app, &clock, "R1H", CHILD, false).await;
    later(&clock, 20);
    seen_at(&app, &clock, "RQX", CHILD, false).await;
    let last = la_a.delivered().last().unwrap().clone();
    assert_eq!(
        summary(&last.body),
        Some((2, 2, 30, false, false)),
        "the first has left the window"
    );
}

#[tokio::test]
async fn scheduled_accesses_never_count_and_carry_no_summary() {
    let (app, clock, la_a, _) = setting(false).await;
    seen_at(&app, &clock, "RJ1", CHILD, false).await;
    seen_at(&app, &clock, "R1H", CHILD, false).await;
    seen_at(&app, &clock, "RQX", CHILD, true).await;
    seen_at(&app, &clock, "RAL", CHILD, true).await;
    assert_eq!(
        la_a.delivered().len(),
        2,
        "scheduled accesses are not notified"
    );
    let all = body(
        app.get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.ops(),
        )
        .await,
    )
    .await;
    let events: Vec<&Value> = all["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let scheduled: Vec<&&Value> = events
        .iter()
        .filter(|e| e["entity"][0]["detail"][0]["valueString"] == "scheduled")
        .collect();
    assert_eq!(scheduled.len(), 2);
    assert!(scheduled.iter().all(|e| summary(e).is_none()));
    // A later unscheduled access counts two settings, not four.
    seen_at(&app, &clock, "RJ1", CHILD, false).await;
    let mut req = token_request(Role::HealthCare, "RJ1");
    req.sub = "clinician-late".into();
    let history = body(
        app.get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.token_for(&req),
        )
        .await,
    )
    .await;
    assert_eq!(
        summary(&history["entry"][0]["resource"]),
        Some((2, 2, 30, false, false))
    );
}

#[tokio::test]
async fn a_fourth_setting_in_the_same_window_is_not_first_again() {
    let (app, clock, la_a, _) = setting(false).await;
    for setting in ["RJ1", "R1H", "RQX", "RAL"] {
        seen_at(&app, &clock, setting, CHILD, false).await;
        later(&clock, 2);
    }
    let notes = la_a.delivered();
    assert_eq!(summary(&notes[3].body), Some((4, 4, 30, true, false)));
    assert_eq!(notes.iter().filter(|n| flagged(n)).count(), 1);
}

#[tokio::test]
async fn each_la_of_the_child_gets_the_summary_on_its_own_notifications() {
    let (app, clock, la_a, la_b) = setting(true).await;
    for setting in ["RJ1", "R1H", "RQX"] {
        seen_at(&app, &clock, setting, CHILD, false).await;
        later(&clock, 3);
    }
    for la in [&la_a, &la_b] {
        let notes = la.delivered();
        assert_eq!(notes.len(), 3);
        assert_eq!(summary(&notes[2].body), Some((3, 3, 30, true, true)));
        assert!(flagged(&notes[2]));
    }
}

#[tokio::test]
async fn the_la_finds_exactly_its_own_childrens_marked_accesses() {
    let (app, clock, _, _) = setting(false).await;
    for setting in ["RJ1", "R1H", "RQX", "RAL"] {
        seen_at(&app, &clock, setting, CHILD, false).await;
        later(&clock, 1);
    }
    // LA B's child, seen at three settings too.
    for setting in ["RJ1", "R1H", "RQX"] {
        seen_at(&app, &clock, setting, OTHER_CHILD, false).await;
        later(&clock, 1);
    }
    let marked = |bundle: &Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["resource"]["entity"][0]["what"]["identifier"]["value"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let a = body(
        app.get("/AuditEvent?attendance-pattern=true", &app.social(LA_A))
            .await,
    )
    .await;
    assert_eq!(marked(&a), [CHILD], "LA A: its child's one marked access");
    assert!(summary(&a["entry"][0]["resource"]).unwrap().4);
    let b = body(
        app.get("/AuditEvent?attendance-pattern=true", &app.social(LA_B))
            .await,
    )
    .await;
    assert_eq!(marked(&b), [OTHER_CHILD]);
    let ops = body(
        app.get("/AuditEvent?attendance-pattern=true&_count=1", &app.ops())
            .await,
    )
    .await;
    assert_eq!(
        (ops["total"].as_i64(), marked(&ops).len()),
        (Some(2), 1),
        "paged"
    );
    let not_marked = body(
        app.get("/AuditEvent?attendance-pattern=false", &app.social(LA_A))
            .await,
    )
    .await;
    assert_eq!(not_marked["total"], 3);
    let since = body(
        app.get(
            "/AuditEvent?attendance-pattern=true&_lastUpdated=gt2026-11-05T00:00:00Z",
            &app.ops(),
        )
        .await,
    )
    .await;
    assert_eq!(marked(&since), [OTHER_CHILD]);
    // Another LA's child: 403, as for any history search of it.
    let theirs = app
        .get(
            &format!("/AuditEvent?patient:identifier={CHILD}&attendance-pattern=true"),
            &app.social(LA_B),
        )
        .await;
    expect_outcome(theirs, 403, "ACCESS_DENIED").await;
    // A clinician sees the summary on each access instead.
    let clinician = app
        .get("/AuditEvent?attendance-pattern=true", &app.health())
        .await;
    expect_outcome(clinician, 403, "ACCESS_DENIED").await;
    // The LA's read of the marked access carries it too.
    let id = a["entry"][0]["resource"]["id"].as_str().unwrap();
    let read = body(
        app.get(&format!("/AuditEvent/{id}"), &app.social(LA_A))
            .await,
    )
    .await;
    assert_eq!(summary(&read), Some((3, 3, 30, true, true)));
}

#[tokio::test]
async fn the_clinicians_history_carries_the_summary_and_a_flag_lookup_does_not_change() {
    let (app, clock, _, _) = setting(false).await;
    for setting in ["RJ1", "R1H", "RQX"] {
        seen_at(&app, &clock, setting, CHILD, false).await;
        later(&clock, 1);
    }
    let flags = body(
        app.get(&format!("/Flag?patient:identifier={CHILD}"), &app.health())
            .await,
    )
    .await;
    assert!(flags["entry"][0]["resource"]
        .get("extension")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["url"] != EXTENSION));
    let history = body(
        app.get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.health(),
        )
        .await,
    )
    .await;
    let newest = &history["entry"][0]["resource"];
    assert_eq!(
        summary(newest).map(|s| (s.1, s.3)),
        Some((3, true)),
        "as of the newest access"
    );
}

#[tokio::test]
async fn the_thresholds_come_from_the_environment() {
    let app = TestApp::spawn_with(|c| c.dispatcher = false).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json(CHILD, LA_A, "P-A1")).await;
    let server = ServerProcess::start(
        &app.config,
        &[
            ("CPIS_ATTENDANCE_WINDOW_DAYS", "7"),
            ("CPIS_ATTENDANCE_SETTINGS", "2"),
        ],
    )
    .await;
    for setting in ["RJ1", "R1H"] {
        let mut req = token_request(Role::HealthCare, setting);
        req.sub = format!("env-{setting}");
        let res = app
            .client
            .get(format!("{}/Flag?patient:identifier={CHILD}", server.base))
            .bearer_auth(app.token_for(&req))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let history = body(
        app.get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.ops(),
        )
        .await,
    )
    .await;
    let newest = &history["entry"][0]["resource"];
    assert_eq!(summary(newest), Some((2, 2, 7, true, true)));
}

#[tokio::test]
async fn an_la_that_adds_a_plan_during_a_pattern_gets_the_mark_on_the_first_access_it_is_shown() {
    let (app, clock, la_a, la_b) = setting(false).await;
    for setting in ["RJ1", "R1H", "RQX"] {
        seen_at(&app, &clock, setting, CHILD, false).await;
    }
    assert_eq!(
        la_a.delivered().iter().map(flagged).collect::<Vec<_>>(),
        [false, false, true]
    );
    // LA B takes the child on while the pattern holds.
    app.create_plan(&plan_json(CHILD, LA_B, "P-B9")).await;
    seen_at(&app, &clock, "RAL", CHILD, false).await;
    seen_at(&app, &clock, "RYJ", CHILD, false).await;
    let to_b: Vec<Received> = la_b
        .delivered()
        .into_iter()
        .filter(|n| n.body["entity"][0]["what"]["identifier"]["value"] == CHILD)
        .collect();
    assert_eq!(to_b.len(), 2);
    assert!(
        flagged(&to_b[0]),
        "LA B's first access in the pattern is its mark"
    );
    assert!(!flagged(&to_b[1]));
    assert_eq!(summary(&to_b[0].body).map(|s| s.4), Some(true));
    assert_eq!(
        la_a.delivered().iter().map(flagged).collect::<Vec<_>>(),
        [false, false, true, false, false],
        "LA A was marked once"
    );
    // Each LA's `attendance-pattern=true` lists its own mark.
    for (la, expected) in [(LA_A, 1), (LA_B, 1)] {
        let marked = body(
            app.get("/AuditEvent?attendance-pattern=true", &app.social(la))
                .await,
        )
        .await;
        assert_eq!(marked["total"], expected, "{la}");
        let event = &marked["entry"][0]["resource"];
        assert_eq!(summary(event).map(|s| s.4), Some(true), "{la}");
    }
    let to_a = body(
        app.get("/AuditEvent?attendance-pattern=true", &app.social(LA_A))
            .await,
    )
    .await;
    let to_b = body(
        app.get("/AuditEvent?attendance-pattern=true", &app.social(LA_B))
            .await,
    )
    .await;
    assert_ne!(
        to_a["entry"][0]["resource"]["id"], to_b["entry"][0]["resource"]["id"],
        "different accesses are each LA's mark"
    );
}
