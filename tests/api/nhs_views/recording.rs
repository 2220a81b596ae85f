//! What a lookup through the views records, shows and notifies: exactly as the native API.

use super::*;

#[tokio::test]
async fn a_care_team_then_an_audit_event_search_is_one_shown_access_and_one_notification() {
    let (app, _clock) = sandbox().await;
    let subscription = json!({
        "resourceType": "Subscription", "status": "requested", "reason": "views",
        "criteria": "AuditEvent?",
        "channel": {"type": "rest-hook", "endpoint": "https://la-a.example.org/n", "payload": "application/fhir+json"}
    });
    assert_eq!(
        app.post("/Subscription", &app.social(LA_A), &subscription)
            .await
            .status(),
        201
    );
    let amina = amina(&app);
    get_ok(&app, &format!("{B}/CareTeam?patient={CHILD}"), &amina).await;
    get_ok(&app, &format!("{B}/AuditEvent?patient={CHILD}"), &amina).await;
    assert_eq!(
        audit_rows(&app),
        (2, 1, 1),
        "two recorded, one shown, one notification"
    );
    // The same through design C, by another clinician: one more of each.
    get_ok(
        &app,
        &format!("{C}/PatientFlag?patient={CHILD}&code=CP-IS"),
        &sam(&app),
    )
    .await;
    assert_eq!(audit_rows(&app), (3, 2, 2));
}

#[tokio::test]
async fn a_scheduled_lookup_through_either_view_is_recorded_but_neither_shown_nor_notified() {
    let (app, _clock) = sandbox().await;
    let subscription = json!({
        "resourceType": "Subscription", "status": "requested", "reason": "views",
        "criteria": "AuditEvent?",
        "channel": {"type": "rest-hook", "endpoint": "https://la-a.example.org/n", "payload": "application/fhir+json"}
    });
    app.post("/Subscription", &app.social(LA_A), &subscription)
        .await;
    let amina = amina(&app);
    let scheduled = view(
        &app,
        Method::GET,
        &format!("{B}/CareTeam?patient={CHILD}"),
        Some(&amina),
        &[("IsUnscheduledAccessEvent", "false")],
    )
    .await;
    assert_eq!(scheduled.status(), 200);
    // The guide's other name for the header is taken when the first is absent.
    let alias = view(
        &app,
        Method::GET,
        &format!("{C}/Flag?patient={CHILD}"),
        Some(&sam(&app)),
        &[("IsUnscheduledEvent", "false")],
    )
    .await;
    assert_eq!(alias.status(), 200);
    assert_eq!(audit_rows(&app), (2, 0, 0));
    let care_settings: Vec<String> = {
        let history = body(
            app.get(
                &format!("/AuditEvent?patient:identifier={CHILD}"),
                &app.ops(),
            )
            .await,
        )
        .await;
        history["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["resource"]["entity"][0]["detail"][0]["valueString"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(care_settings, ["scheduled", "scheduled"]);
}

#[tokio::test]
async fn the_history_through_view_b_is_the_native_history() {
    let (app, clock) = sandbox().await;
    for n in 0..30 {
        let mut req = token_request(Role::HealthCare, HOSPITAL);
        req.sub = format!("clinician-{n}");
        let token = app.token_for(&req);
        assert_eq!(
            app.get(&format!("/Flag?patient:identifier={CHILD}"), &token)
                .await
                .status(),
            200
        );
        clock.set(clock.now_ms() + 60_000);
    }
    let amina = amina(&app);
    let native = body(
        app.get(&format!("/AuditEvent?patient:identifier={CHILD}"), &amina)
            .await,
    )
    .await;
    let through_b = get_ok(&app, &format!("{B}/AuditEvent?patient={CHILD}"), &amina).await;
    let ids = |bundle: &Value| -> Vec<String> {
        resources(bundle)
            .into_iter()
            .filter(|r| r["resourceType"] == "AuditEvent")
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&native).len(), 25);
    assert_eq!(ids(&through_b), ids(&native), "same ids, same order");
    assert_eq!(through_b["total"], native["total"]);
}
