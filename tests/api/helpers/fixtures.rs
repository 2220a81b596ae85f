//! Tokens, resources and outcomes the tests build and read.

use super::*;

pub fn token_request(role: Role, org: &str) -> TokenRequest {
    TokenRequest {
        sub: format!("user-{}", role.as_str()),
        role,
        org: Some(org.into()),
        name: Some("Jane Smith".into()),
        org_name: Some("Test organisation".into()),
        job_role: Some("Staff Nurse".into()),
        job_role_code: None,
        ttl_seconds: 300,
    }
}

/// A health-care token for person `n` at the hospital: each `n` a person of their own, so each
/// lookup is a first view (shown and notified).
pub fn clinician(app: &TestApp, n: usize) -> String {
    let mut req = token_request(Role::HealthCare, HOSPITAL);
    req.sub = format!("clinician-{n}");
    req.name = Some(format!("Clinician {n}"));
    app.token_for(&req)
}

/// An LA's rest-hook Subscription to `endpoint`.
pub fn subscription_json(endpoint: &str) -> Value {
    json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Tell the LA when its children are seen in unscheduled care",
        "criteria": "AuditEvent?",
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "header": ["Authorization: Bearer la-shared-secret"]
        }
    })
}

pub fn la_json(ods: &str) -> Value {
    json!({
        "resourceType": "Organization",
        "identifier": [{"system": ODS, "value": ods}],
        "active": true,
        "name": format!("Local authority {ods}"),
        "telecom": [
            {"system": "phone", "value": "020 7000 0001", "use": "work"},
            {"system": "phone", "value": "020 7000 0999", "use": "mobile"}
        ]
    })
}

pub fn plan_system(la: &str) -> String {
    format!("https://fhir.{}.gov.uk/Id/plan", la.to_ascii_lowercase())
}

/// An active child protection plan of `la` for `nhs`, referenced `reference`.
pub fn plan_json(nhs: &str, la: &str, reference: &str) -> Value {
    json!({
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": plan_system(la), "value": reference}],
        "status": "active",
        "type": [{"coding": [{"system": SNOMED, "code": CPP}]}],
        "patient": {"identifier": {"system": NHS, "value": nhs}},
        "managingOrganization": {"identifier": {"system": ODS, "value": la}},
        "period": {"start": "2026-01-05"}
    })
}

/// Asserts an error response: its status, and the Spine code of its first issue. Returns the
/// OperationOutcome for further checks.
pub async fn expect_outcome(res: Response, status: u16, spine: &str) -> Value {
    let url = format!(
        "{} {}",
        res.url().path(),
        res.url().query().unwrap_or_default()
    );
    assert_eq!(res.status(), status, "{url}");
    let outcome = body(res).await;
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{url}");
    assert_eq!(spine_code(&outcome), spine, "{url}: {outcome}");
    outcome
}

/// The Spine code of the first issue of an OperationOutcome.
pub fn spine_code(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}
