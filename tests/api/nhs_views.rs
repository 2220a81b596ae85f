//! NHS England's CP-IS APIs (NHS-COMPAT.md): the CP-IS FHIR API at `/cpis/FHIR/R4` (design B)
//! and the Patient Flag API at `/patient-flags-api/FHIR/R4` (design C), over the sandbox seed.
//! They answer as the guides' examples do, show only what health-care may see, and record,
//! collapse and notify exactly as the native API.

use chrono::{TimeZone, Utc};
use cpis::auth::token::TokenRequest;
use cpis::auth::Role;
use cpis::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

mod examples;
mod listing;
mod recording;
mod refusals;

const B: &str = "/cpis/FHIR/R4";
const C: &str = "/patient-flags-api/FHIR/R4";
const CHILD: &str = "9449306753";
const UNBORN_MOTHER: &str = "9912003888";
const IG_INCLUDE: &str =
    "AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass%7CASSIGNED";

/// The sandbox, on 1 December 2026 at noon (the contract's "today").
async fn sandbox() -> (TestApp, Clock) {
    let noon = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let clock = Clock::fixed(noon.timestamp_millis());
    let app = TestApp::spawn_with(|c| {
        c.sandbox = true;
        c.clock = clock.clone();
    })
    .await;
    (app, clock)
}

fn person(
    app: &TestApp,
    sub: &str,
    name: &str,
    org: (&str, &str),
    job: (&str, Option<&str>),
) -> String {
    app.token_for(&TokenRequest {
        sub: sub.into(),
        role: Role::HealthCare,
        org: Some(org.0.into()),
        name: Some(name.into()),
        org_name: Some(org.1.into()),
        job_role: Some(job.0.into()),
        job_role_code: job.1.map(String::from),
        ttl_seconds: 300,
    })
}

/// The contract's clinician.
fn amina(app: &TestApp) -> String {
    person(
        app,
        "555021935107",
        "Dr Amina Rahman",
        ("R1H", "Barts Health NHS Trust"),
        ("Clinical Practitioner Access Role", Some("R8000")),
    )
}

/// The contract's earlier nurse, whose token has no job-role code.
fn sam(app: &TestApp) -> String {
    person(
        app,
        "555021936201",
        "Sam Okafor",
        ("RQX", "Homerton Healthcare NHS Foundation Trust"),
        ("Staff Nurse", None),
    )
}

async fn view(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.client.request(method, format!("{}{path}", app.address));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (name, value) in headers {
        req = req.header(name, value);
    }
    req.send().await.unwrap()
}

async fn get_ok(app: &TestApp, path: &str, token: &str) -> Value {
    let res = view(app, Method::GET, path, Some(token), &[]).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// What may differ from the contract's examples: ids, instants and the references built on ids.
fn without_ids(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(obj) => {
                for key in ["id", "fullUrl", "lastUpdated", "recorded"] {
                    obj.remove(key);
                }
                if let Some(Value::String(r)) = obj.get_mut("reference") {
                    *r = r.split('/').next().unwrap_or_default().to_string();
                }
                obj.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

fn audit_rows(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count_rows("audit_events"),
        app.count_where("audit_events", "shown"),
        app.count_rows("notification_outbox"),
    )
}

fn tower_hamlets_contacts() -> Value {
    json!([
        {"system": "phone", "value": "020 7364 5006", "use": "work"},
        {"system": "phone", "value": "020 7364 4079", "use": "mobile"}
    ])
}

fn tower_hamlets() -> Value {
    json!({"type": "Organization", "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "E09000030"}, "display": "London Borough of Tower Hamlets"})
}

fn child(nhs: &str) -> Value {
    json!({"type": "Patient", "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}})
}

fn cpp() -> Value {
    json!({"system": "http://snomed.info/sct", "code": "342191000000101", "display": "Subject to child protection plan"})
}

/// A plan of `la` for `nhs` starting on `start`, with `status` and an optional end.
async fn plan(
    app: &TestApp,
    nhs: &str,
    la: &str,
    reference: &str,
    status: &str,
    start: &str,
    end: Option<&str>,
) -> String {
    let mut body = plan_json(nhs, la, reference);
    body["status"] = json!(status);
    body["period"] = match end {
        Some(end) => json!({"start": start, "end": end}),
        None => json!({"start": start}),
    };
    app.create_plan(&body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}
