//! The same access (SPEC §10): a viewer lookup is recorded, collapsed and notified exactly as
//! the API's lookup by the same clinician with the same answer; Previous views and the
//! attendance summary.

use cpis::auth::Role;
use serde_json::json;

use super::*;
use crate::receiver::Receiver;

/// An AuditEvent without what differs between two accesses of two children: its id and
/// instant, the child, and the ids of the child's Flags.
fn comparable(event: &Value, nhs: &str) -> Value {
    let mut event = event.clone();
    let object = event.as_object_mut().unwrap();
    object.remove("id");
    object.remove("recorded");
    object
        .get_mut("meta")
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove("lastUpdated");
    let text = event.to_string().replace(nhs, "CHILD");
    let mut event: Value = serde_json::from_str(&text).unwrap();
    for entity in event["entity"].as_array_mut().unwrap() {
        if let Some(reference) = entity.pointer_mut("/what/reference") {
            let kind = reference.as_str().unwrap().split('/').next().unwrap();
            *reference = json!(format!("{kind}/PLAN"));
        }
    }
    event
}

#[tokio::test]
async fn a_viewer_lookup_is_recorded_and_notified_as_the_api_lookup_is() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let receiver = Receiver::start();
    subscribe(&app, LA_A, &receiver.url).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    browser.look_up(OTHER_CHILD, "unscheduled").await;
    let viewer_events = audit_events(&app, OTHER_CHILD).await;
    assert_eq!(viewer_events.len(), 1);
    let viewer_event = &viewer_events[0];
    // The same clinician through the API, with the same answer.
    let mut same = token_request(Role::HealthCare, "RJ1");
    same.sub = viewer_event["agent"][0]["who"]["identifier"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    same.name = Some("Jane Smith".into());
    same.org_name = None;
    same.job_role = Some("Staff Nurse".into());
    let token = app.token_for(&same);
    clock.set(T0 + 1000);
    let res = app
        .send(
            reqwest::Method::GET,
            &format!("/Flag?patient:identifier={CHILD}&_include=Flag:author"),
            &token,
            None,
            &[("IsUnscheduledAccessEvent", "true")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let api_events = audit_events(&app, CHILD).await;
    assert_eq!(api_events.len(), 1);
    assert_eq!(
        comparable(viewer_event, OTHER_CHILD),
        comparable(&api_events[0], CHILD)
    );
    assert_eq!(
        viewer_event["entity"][0]["detail"][0]["valueString"],
        "unscheduled"
    );

    clock.set(T0 + 5000);
    app.deliver_pending().await;
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), 2, "both notified");
    let of = |nhs: &str| {
        delivered
            .iter()
            .find(|d| d.body.to_string().contains(nhs))
            .unwrap()
            .clone()
    };
    let (viewer_note, api_note) = (of(OTHER_CHILD), of(CHILD));
    assert_eq!(
        comparable(&viewer_note.body, OTHER_CHILD),
        comparable(&api_note.body, CHILD)
    );
    let pattern = |d: &crate::receiver::Received| {
        d.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-cpis-attendance-pattern"))
    };
    assert_eq!(pattern(&viewer_note), pattern(&api_note));

    // A second view by the same person within 24 hours is collapsed as the API's would be.
    browser.look_up(OTHER_CHILD, "unscheduled").await;
    clock.set(T0 + 10_000);
    app.deliver_pending().await;
    assert_eq!(
        receiver.delivered().len(),
        2,
        "collapsed: not notified again"
    );
}

#[tokio::test]
async fn a_scheduled_visit_is_recorded_but_not_notified() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    let receiver = Receiver::start();
    subscribe(&app, LA_A, &receiver.url).await;
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(CHILD, "scheduled").await;
    assert!(result.contains("Child protection plan"));
    assert!(!result.contains("has been told"), "{result}");
    let events = audit_events(&app, CHILD).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["entity"][0]["detail"][0]["valueString"],
        "scheduled"
    );
    clock.set(T0 + 5000);
    assert_eq!(app.deliver_pending().await, 0);
    assert!(receiver.attempts().is_empty());
}

#[tokio::test]
async fn previous_views_list_the_unscheduled_views_newest_first_in_uk_time() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    for n in 1..=2 {
        clock.set(T0 + n as i64 * 60 * MINUTE);
        let res = app
            .get(
                &format!("/Flag?patient:identifier={CHILD}"),
                &clinician(&app, n),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    // A scheduled view is not a previous view.
    let res = app
        .send(
            reqwest::Method::GET,
            &format!("/Flag?patient:identifier={CHILD}"),
            &clinician(&app, 3),
            None,
            &[("IsUnscheduledAccessEvent", "false")],
        )
        .await;
    assert_eq!(res.status(), 200);
    clock.set(T0 + 3 * 60 * MINUTE);
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(CHILD, "unscheduled").await;
    let views = &result[result.find("Previous views").unwrap()..];
    let jane = views.find("Jane Smith").expect("this view");
    let second = views.find("Clinician 2").expect("clinician 2");
    let first = views.find("Clinician 1").expect("clinician 1");
    assert!(jane < second && second < first, "{views}");
    assert!(!views.contains("Clinician 3"), "{views}");
    assert!(views.contains("9 September 2026 at 17:05"), "{views}");
    assert!(views.contains("9 September 2026 at 15:05"), "{views}");
    assert!(views.contains("Test organisation (RJ1)"), "{views}");
}

#[tokio::test]
async fn the_attendance_summary_is_shown_when_it_is_a_pattern() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    for (n, org) in [(1, "RXH"), (2, "RJZ")] {
        clock.set(T0 + n as i64 * MINUTE);
        let mut req = token_request(Role::HealthCare, org);
        req.sub = format!("clinician-{n}");
        let res = app
            .get(
                &format!("/Flag?patient:identifier={CHILD}"),
                &app.token_for(&req),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(OTHER_CHILD, "unscheduled").await;
    assert!(!result.contains("Repeated attendance"));
    let result = browser.look_up(CHILD, "unscheduled").await;
    assert!(result.contains("Repeated attendance"), "{result}");
    assert!(result.contains("3 different unscheduled care settings in the last 30 days"));
}

#[tokio::test]
async fn previous_views_hold_the_25_most_recent_this_one_included() {
    let (app, clock) = viewer_app(|_| {}).await;
    setup_children(&app).await;
    for n in 1..=26 {
        clock.set(T0 + n as i64 * MINUTE);
        let res = app
            .get(
                &format!("/Flag?patient:identifier={CHILD}"),
                &clinician(&app, n),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    clock.set(T0 + 30 * MINUTE);
    let browser = Browser::new(&app);
    browser.sign_in().await;
    let result = browser.look_up(CHILD, "unscheduled").await;
    let views = &result[result.find("Previous views").unwrap()..];
    let body = &views[views.find("<tbody").unwrap()..views.find("</tbody>").unwrap()];
    assert_eq!(body.matches("<tr").count(), 25, "{body}");
    assert!(body.contains("Jane Smith"), "this view");
    for n in 3..=26 {
        assert!(body.contains(&format!(">Clinician {n}<")), "clinician {n}");
    }
    for n in [1, 2] {
        assert!(!body.contains(&format!(">Clinician {n}<")), "clinician {n}");
    }
}
