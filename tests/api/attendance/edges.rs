//! The 24-hour collapse and the attendance window at their edges, on the injected clock.

use super::*;

/// A clinician at `setting` as one person (`sub`), so that a second look within 24 hours
/// collapses.
async fn seen_by(app: &TestApp, clock: &Clock, sub: &str, setting: &str) {
    look_up_as(app, clock, sub, setting, CHILD, false).await;
}

#[tokio::test]
async fn a_view_the_collapse_hides_is_still_an_attendance_on_its_own_day() {
    let (app, clock, la_a, _) = setting(false).await;
    // 10:00 on 1 November, then 08:00 on 2 November: the same nurse within 24 hours, so
    // the second view is collapsed (not shown, not notified) but is a second attendance.
    seen_by(&app, &clock, "nurse-1", "RJ1").await;
    later(&clock, 1);
    clock.set(clock.now_ms() - 2 * 60 * 60 * 1000);
    seen_by(&app, &clock, "nurse-1", "RJ1").await;
    assert_eq!(
        la_a.delivered().len(),
        1,
        "the collapsed view is not notified"
    );
    seen_at(&app, &clock, "R1H", CHILD, false).await;
    let last = la_a.delivered().last().unwrap().clone();
    assert_eq!(
        summary(&last.body),
        Some((3, 2, 30, false, false)),
        "RJ1 on two days and R1H: three attendances"
    );
}

const MINUTE_MS: i64 = 60 * 1000;

/// The 24-hour collapse at its edge (SPEC §3): views by one person at 0 h, 23 h 59 min and
/// 24 h 01 min show (and notify) the first and the third.
#[tokio::test]
async fn the_24_hour_collapse_turns_between_23_h_59_and_24_h_01() {
    let (app, clock, la_a, _) = setting(false).await;
    let first = clock.now_ms();
    seen_by(&app, &clock, "nurse-1", "RJ1").await;
    clock.set(first + 24 * 60 * MINUTE_MS - MINUTE_MS);
    seen_by(&app, &clock, "nurse-1", "RJ1").await;
    clock.set(first + 24 * 60 * MINUTE_MS + MINUTE_MS);
    seen_by(&app, &clock, "nurse-1", "RJ1").await;
    let times: Vec<String> = la_a
        .delivered()
        .iter()
        .map(|n| n.body["recorded"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        times,
        ["2026-11-01T10:00:00.000Z", "2026-11-02T10:01:00.000Z"],
        "the 23 h 59 min view is collapsed, the 24 h 01 min one is not"
    );
    let history = body(
        app.get(
            &format!("/AuditEvent?patient:identifier={CHILD}"),
            &app.health(),
        )
        .await,
    )
    .await;
    let shown: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["recorded"].as_str().unwrap())
        .collect();
    assert!(
        shown.contains(&"2026-11-01T10:00:00.000Z")
            && shown.contains(&"2026-11-02T10:01:00.000Z")
            && !shown.contains(&"2026-11-02T09:59:00.000Z"),
        "{shown:?}"
    );
    assert_eq!(
        app.count_rows("audit_events"),
        4,
        "every view is recorded (and the history search)"
    );
}

/// The attendance window at its edge: 30 days, today included, in UK days. A first setting
/// at 00:01 on 1 November still counts at 23:59 on 30 November, and no longer at 00:01 on
/// 1 December.
#[tokio::test]
async fn the_attendance_window_turns_at_midnight_after_its_thirtieth_day() {
    let at = |d: u32, m: u32, h: u32, min: u32| {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    };
    for (third, pattern) in [(at(30, 11, 23, 59), true), (at(1, 12, 0, 1), false)] {
        let (app, clock, la_a, _) = setting(false).await;
        clock.set(at(1, 11, 0, 1));
        seen_at(&app, &clock, "RJ1", CHILD, false).await;
        clock.set(at(15, 11, 12, 0));
        seen_at(&app, &clock, "R1H", CHILD, false).await;
        clock.set(third);
        seen_at(&app, &clock, "RQX", CHILD, false).await;
        let last = la_a.delivered().last().unwrap().clone();
        let (_, settings, _, is_pattern, reached) = summary(&last.body).unwrap();
        assert_eq!(
            (settings, is_pattern, reached, flagged(&last)),
            if pattern {
                (3, true, true, true)
            } else {
                (2, false, false, false)
            },
            "third setting at {third} ms"
        );
    }
}
