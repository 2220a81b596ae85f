//! The alert follows the calendar in England (Europe/London), not UTC: the clinician sees a
//! plan that starts on 1 June from 00:00 BST on 1 June, and an ended plan stops flagging at
//! midnight in England. The server's clock is fixed by the test, never slept on.

use chrono::{TimeZone, Utc};
use cpis::clock::Clock;
use serde_json::Value;

use crate::helpers::*;

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

fn plan_with_period(nhs: &str, reference: &str, start: &str, end: Option<&str>) -> Value {
    let mut plan = plan_json(nhs, LA_A, reference);
    plan["period"] = match end {
        Some(end) => serde_json::json!({"start": start, "end": end}),
        None => serde_json::json!({"start": start}),
    };
    plan
}

/// The status health-care sees on a read of the Flag, and whether `Flag?status=` agrees.
async fn status_everywhere(app: &TestApp, flag_id: &str, nhs: &str) -> String {
    let read = app.get(&format!("/Flag/{flag_id}"), &app.health()).await;
    assert_eq!(read.status(), 200);
    let status = body(read).await["status"].as_str().unwrap().to_string();
    for (asked, expected) in [
        ("active", status == "active"),
        ("inactive", status == "inactive"),
    ] {
        let found = body(
            app.get(
                &format!("/Flag?patient:identifier={NHS}|{nhs}&status={asked}"),
                &app.health(),
            )
            .await,
        )
        .await;
        assert_eq!(
            found["total"] == 1,
            expected,
            "Flag?status={asked} when read says {status}"
        );
    }
    let searched = body(
        app.get(
            &format!("/Flag?patient:identifier={NHS}|{nhs}"),
            &app.health(),
        )
        .await,
    )
    .await;
    assert_eq!(searched["entry"][0]["resource"]["status"], status.as_str());
    status
}

/// A plan starting on `first_day` and one ending the day before, created at `created`; at
/// `last_evening` (still the day before in England) and at `first_morning` (already
/// `first_day`) the first must read inactive then active, the second active then inactive.
async fn the_alert_turns_at_midnight_in_england(
    created: i64,
    first_day: &str,
    day_before: &str,
    last_evening: i64,
    first_morning: i64,
) {
    let clock = Clock::fixed(created);
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    let starts = app
        .create_plan(&plan_with_period("9449306753", "S-1", first_day, None))
        .await;
    let ends = app
        .create_plan(&plan_with_period(
            "9000000009",
            "E-1",
            "2026-01-05",
            Some(day_before),
        ))
        .await;
    let (starts, ends) = (starts["id"].as_str().unwrap(), ends["id"].as_str().unwrap());
    clock.set(last_evening);
    assert_eq!(
        status_everywhere(&app, starts, "9449306753").await,
        "inactive"
    );
    assert_eq!(status_everywhere(&app, ends, "9000000009").await, "active");
    clock.set(first_morning);
    assert_eq!(
        status_everywhere(&app, starts, "9449306753").await,
        "active"
    );
    assert_eq!(
        status_everywhere(&app, ends, "9000000009").await,
        "inactive"
    );
}

#[tokio::test]
async fn on_a_summer_night_the_day_in_england_has_already_begun() {
    // 22:30 UTC on 31 May is 23:30 BST (still 31 May); 23:30 UTC is 00:30 BST on 1 June.
    the_alert_turns_at_midnight_in_england(
        at(2026, 5, 20, 12, 0),
        "2026-06-01",
        "2026-05-31",
        at(2026, 5, 31, 22, 30),
        at(2026, 5, 31, 23, 30),
    )
    .await;
}

#[tokio::test]
async fn on_a_winter_night_the_day_in_england_is_the_utc_day() {
    // 23:30 UTC on 31 December is 23:30 GMT: still 31 December in England.
    the_alert_turns_at_midnight_in_england(
        at(2026, 12, 1, 12, 0),
        "2027-01-01",
        "2026-12-31",
        at(2026, 12, 31, 23, 30),
        at(2027, 1, 1, 0, 30),
    )
    .await;
}

/// The Flag status rule is written twice: in Rust (what a read or a search entry shows) and in
/// SQL (what `Flag?status=` selects). Over plans starting and ending on each day around both
/// 2026 clock changes, seen at instants either side of midnight in England and in UTC, the two
/// always agree.
#[tokio::test]
async fn the_status_a_flag_shows_and_the_status_search_agree_on_every_day_and_hour() {
    let clock = Clock::fixed(at(2026, 1, 5, 12, 0));
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    let days = [
        "2026-03-28",
        "2026-03-29",
        "2026-03-30",
        "2026-10-24",
        "2026-10-25",
        "2026-10-26",
    ];
    let mut stem = 944_930_000u64;
    let mut next_nhs = || loop {
        stem += 1;
        if let Some(n) = cpis::fhir::NhsNumber::from_stem(stem) {
            break n.as_str().to_string();
        }
    };
    for (i, day) in days.iter().enumerate() {
        let starts = plan_with_period(&next_nhs(), &format!("S{i}"), day, None);
        let ends = plan_with_period(&next_nhs(), &format!("E{i}"), "2026-01-01", Some(day));
        let mut finished = plan_with_period(&next_nhs(), &format!("F{i}"), "2026-01-01", Some(day));
        finished["status"] = "finished".into();
        for plan in [starts, ends, finished] {
            app.create_plan(&plan).await;
        }
    }
    let flags = |query: &'static str| {
        let app = &app;
        async move {
            let found = body(
                app.get(&format!("/Flag?_count=500{query}"), &app.ops())
                    .await,
            )
            .await;
            found["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let r = &e["resource"];
                    (
                        r["id"].as_str().unwrap().to_string(),
                        r["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let mut instants = Vec::new();
    for (m, d) in [
        (3, 28),
        (3, 29),
        (3, 30),
        (3, 31),
        (10, 24),
        (10, 25),
        (10, 26),
        (10, 27),
    ] {
        for (h, min) in [(0, 0), (0, 30), (22, 59), (23, 0), (23, 30)] {
            instants.push(at(2026, m, d, h, min));
        }
    }
    for now in instants {
        clock.set(now);
        let shown = flags("").await;
        assert_eq!(shown.len(), days.len() * 3);
        for asked in ["active", "inactive"] {
            let mut selected: Vec<String> = flags(if asked == "active" {
                "&status=active"
            } else {
                "&status=inactive"
            })
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
            let mut expected: Vec<String> = shown
                .iter()
                .filter(|(_, status)| status == asked)
                .map(|(id, _)| id.clone())
                .collect();
            selected.sort();
            expected.sort();
            assert_eq!(selected, expected, "Flag?status={asked} at {now} ms");
        }
    }
}

/// A small deterministic generator (xorshift64*): the property test's cases are the same on
/// every run for one seed, and the seed is in every failure message.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n).unwrap()
    }
}

/// The clock changes of 2026 and 2027 in England.
fn clock_changes() -> [chrono::NaiveDate; 3] {
    [
        chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2027, 3, 28).unwrap(),
    ]
}

/// A random day within `spread` days of a clock change.
fn near_an_edge(cases: &mut Cases, spread: u64) -> chrono::NaiveDate {
    let edge = clock_changes()[usize::try_from(cases.below(3)).unwrap()];
    edge + chrono::Duration::days(cases.below(2 * spread + 1) - i64::try_from(spread).unwrap())
}

/// `count` plans of random status and period around the clock changes, one child each.
async fn create_random_plans(app: &TestApp, cases: &mut Cases, count: usize) {
    let mut stem = 944_940_000u64;
    for i in 0..count {
        let nhs = loop {
            stem += 1;
            if let Some(n) = cpis::fhir::NhsNumber::from_stem(stem) {
                break n.as_str().to_string();
            }
        };
        let start = near_an_edge(cases, 20);
        let end = match cases.below(4) {
            0 => None,
            _ => Some(start + chrono::Duration::days(cases.below(30))),
        };
        let end_text = end.map(|d| d.to_string());
        let mut plan = plan_with_period(
            &nhs,
            &format!("R{i}"),
            &start.to_string(),
            end_text.as_deref(),
        );
        plan["status"] = match cases.below(10) {
            0 | 1 => "finished",
            2 => "cancelled",
            _ => "active",
        }
        .into();
        app.create_plan(&plan).await;
    }
}

/// Every Flag `Flag?…{query}` finds, as (id, status), sorted.
async fn flag_statuses(app: &TestApp, query: &str) -> Vec<(String, String)> {
    let found = body(
        app.get(&format!("/Flag?_count=500{query}"), &app.ops())
            .await,
    )
    .await;
    let mut entries: Vec<(String, String)> = found["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let r = &e["resource"];
                    (
                        r["id"].as_str().unwrap().to_string(),
                        r["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries
}

/// One rule, two forms (`fhir::period`): the in-force test in Rust (the status a Flag shows)
/// and in SQL (what `Flag?status=` selects) agree on 10,000 random (plan, instant) cases:
/// 125 plans of random status and period around the clock changes of 2026 and 2027, each seen
/// at 80 random instants, many of them within an hour of midnight in England or in UTC.
/// `CPIS_PROPERTY_SEED` replays another set of cases.
#[tokio::test]
async fn the_in_force_rule_agrees_in_rust_and_sql_on_random_plans_and_days() {
    const PLANS: usize = 125;
    const INSTANTS: usize = 80;
    let seed: u64 = std::env::var("CPIS_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAFE_F00D);
    let mut cases = Cases(seed);
    let clock = Clock::fixed(at(2026, 1, 5, 12, 0));
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    create_random_plans(&app, &mut cases, PLANS).await;
    let mut checked = 0;
    for _ in 0..INSTANTS {
        let day = near_an_edge(&mut cases, 25);
        // Within an hour either side of midnight in England (23:00 or 00:00 UTC) half the
        // time, anywhere in the day otherwise.
        let minute = match cases.below(2) {
            0 => {
                [22 * 60, 23 * 60, 0][usize::try_from(cases.below(3)).unwrap()] + cases.below(120)
                    - 30
            }
            _ => cases.below(24 * 60),
        };
        let now = day
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
            + minute * 60_000;
        clock.set(now);
        let shown = flag_statuses(&app, "").await;
        assert_eq!(shown.len(), PLANS);
        for asked in ["active", "inactive"] {
            let selected: Vec<String> = flag_statuses(&app, &format!("&status={asked}"))
                .await
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let expected: Vec<String> = shown
                .iter()
                .filter(|(_, status)| status == asked)
                .map(|(id, _)| id.clone())
                .collect();
            assert_eq!(
                selected, expected,
                "Flag?status={asked} at {now} ms (seed {seed}): the SQL form disagrees with the Rust form"
            );
        }
        checked += shown.len();
    }
    assert_eq!(checked, 10_000, "(plan, instant) cases checked");
}
