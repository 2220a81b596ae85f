//! NHS England's CP-IS APIs (NHS-COMPAT.md): the CP-IS FHIR API at `/cpis/FHIR/R4` (design B)
//! and the Patient Flag API at `/patient-flags-api/FHIR/R4` (design C), over the sandbox seed.
//! They answer as the guides' examples do, show only what health-care may see, and record,
//! collapse and notify exactly as the native API.

use chrono::{TimeZone, Utc};
use cpis::auth::jwt::TokenRequest;
use cpis::auth::Role;
use cpis::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

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

#[tokio::test]
async fn design_b_answers_as_the_guide_s_examples() {
    let (app, clock) = sandbox().await;
    // An earlier access by a nurse at another trust...
    let sam = sam(&app);
    get_ok(&app, &format!("{B}/CareTeam?patient={CHILD}"), &sam).await;
    clock.set(clock.now_ms() + 3_600_000);
    // ...then the contract's clinician.
    let amina = amina(&app);
    let found = get_ok(
        &app,
        &format!("{B}/CareTeam?patient:identifier={NHS}|{CHILD}"),
        &amina,
    )
    .await;
    assert_eq!(found["total"], 1);
    assert_eq!(
        without_ids(found["entry"][0]["resource"].clone()),
        json!({
            "resourceType": "CareTeam",
            "meta": {},
            "status": "active",
            "category": [{"coding": [cpp()]}],
            "name": "London Borough of Tower Hamlets",
            "subject": child(CHILD),
            "period": {"start": "2026-01-05"},
            "managingOrganization": [tower_hamlets()],
            "telecom": tower_hamlets_contacts()
        })
    );
    let care_team_id = found["entry"][0]["resource"]["id"].as_str().unwrap();
    assert!(found["entry"][0]["fullUrl"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{B}/CareTeam/{care_team_id}")));

    let history = get_ok(
        &app,
        &format!("{B}/AuditEvent?patient:identifier={NHS}|{CHILD}&_include={IG_INCLUDE}"),
        &amina,
    )
    .await;
    assert_eq!(
        history["total"], 2,
        "the search itself is folded into the CareTeam access"
    );
    let modes: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["search"]["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["match", "match", "include", "include"]);
    let [first, second, first_role, second_role] = resources(&history).try_into().unwrap();
    assert_eq!(
        first["agent"][0]["who"]["reference"],
        format!("PractitionerRole/{}", first["id"].as_str().unwrap())
    );
    let observer = format!("{}{B}", app.address);
    assert_eq!(
        without_ids(first),
        json!({
            "resourceType": "AuditEvent",
            "meta": {},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type"}],
            "action": "E",
            "outcome": "0",
            "agent": [{
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "ASSIGNED", "display": "assigned entity"}]},
                "who": {"reference": "PractitionerRole", "display": "Dr Amina Rahman"},
                "requestor": true
            }],
            "source": {"observer": {"display": observer}},
            "entity": [{"what": child(CHILD)}]
        })
    );
    assert_eq!(second["agent"][0]["who"]["display"], "Sam Okafor");
    assert_eq!(
        without_ids(first_role),
        json!({
            "resourceType": "PractitionerRole",
            "practitioner": {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555021935107"}, "display": "Dr Amina Rahman"},
            "organization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "R1H"}, "display": "Barts Health NHS Trust"},
            "code": [{"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/NHSDigital-SDS-JobRoleCode", "code": "R8000", "display": "Clinical Practitioner Access Role"}], "text": "Clinical Practitioner Access Role"}]
        })
    );
    assert_eq!(
        without_ids(second_role),
        json!({
            "resourceType": "PractitionerRole",
            "practitioner": {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555021936201"}, "display": "Sam Okafor"},
            "organization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RQX"}, "display": "Homerton Healthcare NHS Foundation Trust"},
            "code": [{"coding": [{"display": "Staff Nurse"}], "text": "Staff Nurse"}]
        })
    );
    // A read of the CareTeam is the same resource.
    let read = get_ok(&app, &format!("{B}/CareTeam/{care_team_id}"), &amina).await;
    assert_eq!(read, found["entry"][0]["resource"]);
}

#[tokio::test]
async fn design_c_answers_as_the_guide_s_example() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    let found = get_ok(
        &app,
        &format!("{C}/PatientFlag?patient={CHILD}&code=child-protection-information-system-flag"),
        &amina,
    )
    .await;
    assert_eq!(found["total"], 1);
    let [flag, care_plan, care_team] = resources(&found).try_into().unwrap();
    let profile = |name: &str| json!({"profile": [format!("https://fhir.nhs.uk/England/StructureDefinition/{name}")]});
    assert_eq!(
        without_ids(flag.clone()),
        json!({
            "resourceType": "Flag",
            "meta": profile("England-Flag-PatientFlag"),
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/flag-detail",
                "valueReference": {"reference": "CarePlan", "display": "Subject to child protection plan"}
            }],
            "status": "active",
            "category": [{"coding": [{"system": "https://fhir.nhs.uk/England/CodeSystem/PatientFlagCategory", "code": "CP-IS", "display": "Child Protection - Information Sharing Flag"}]}],
            "code": {"coding": [
                {"system": "https://fhir.nhs.uk/England/CodeSystem/England-FlagCategoryPatient", "code": "child-protection-information-system-flag", "display": "Child Protection Information System Flag"},
                {"system": "https://fhir.nhs.uk/England/CodeSystem/PatientFlagCategory", "code": "CP-IS", "display": "Child Protection - Information Sharing Flag"}
            ]},
            "subject": child(CHILD),
            "period": {"start": "2026-01-05"},
            "author": tower_hamlets()
        })
    );
    assert_eq!(
        without_ids(care_plan.clone()),
        json!({
            "resourceType": "CarePlan",
            "meta": profile("England-CarePlan-Flag"),
            "status": "active",
            "intent": "plan",
            "category": [{"coding": [cpp()]}],
            "subject": child(CHILD),
            "period": {"start": "2026-01-05"},
            "careTeam": [{"reference": "CareTeam", "display": "London Borough of Tower Hamlets"}]
        })
    );
    assert_eq!(
        without_ids(care_team.clone()),
        json!({
            "resourceType": "CareTeam",
            "meta": profile("England-CareTeam-Flag"),
            "status": "active",
            "name": "London Borough of Tower Hamlets",
            "managingOrganization": [tower_hamlets()],
            "telecom": tower_hamlets_contacts()
        })
    );
    // References resolve, at this base.
    assert_eq!(
        flag["extension"][0]["valueReference"]["reference"],
        format!("CarePlan/{}", care_plan["id"].as_str().unwrap())
    );
    for reference in [
        flag["extension"][0]["valueReference"]["reference"]
            .as_str()
            .unwrap(),
        care_plan["careTeam"][0]["reference"].as_str().unwrap(),
    ] {
        let read = get_ok(&app, &format!("{C}/{reference}"), &amina).await;
        assert_eq!(
            format!(
                "{}/{}",
                read["resourceType"].as_str().unwrap(),
                read["id"].as_str().unwrap()
            ),
            reference
        );
    }
    let by_id = get_ok(
        &app,
        &format!("{C}/Flag/{}", flag["id"].as_str().unwrap()),
        &amina,
    )
    .await;
    assert_eq!(by_id, flag);
    // Without `code`, only the flags (the CarePlans and CareTeams on request).
    let plain = get_ok(&app, &format!("{C}/Flag?patient={NHS}|{CHILD}"), &amina).await;
    assert_eq!(resources(&plain).len(), 1);
    let asked = get_ok(
        &app,
        &format!("{C}/Flag?patient=Patient/{CHILD}&_include=Flag:detail&_include:iterate=CarePlan:care-team"),
        &amina,
    )
    .await;
    assert_eq!(resources(&asked).len(), 3);
}

#[tokio::test]
async fn an_unborn_child_s_plan_is_found_by_the_mother_s_number() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    let b = get_ok(
        &app,
        &format!("{B}/CareTeam?patient={UNBORN_MOTHER}"),
        &amina,
    )
    .await;
    assert_eq!(b["total"], 1);
    assert_eq!(b["entry"][0]["resource"]["subject"], child(UNBORN_MOTHER));
    assert_eq!(b["entry"][0]["resource"]["name"], "Kent County Council");
    let c = get_ok(&app, &format!("{C}/Flag?patient={UNBORN_MOTHER}"), &amina).await;
    assert_eq!(c["entry"][0]["resource"]["subject"], child(UNBORN_MOTHER));
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

#[tokio::test]
async fn several_plans_of_several_las_for_one_child_are_each_listed_newest_first() {
    let (app, _clock) = sandbox().await;
    plan(&app, CHILD, LA_B, "B-1", "active", "2026-03-01", None).await;
    plan(&app, CHILD, LA_A, "A-2", "active", "2026-07-01", None).await;
    let amina = amina(&app);
    let b = get_ok(&app, &format!("{B}/CareTeam?patient={CHILD}"), &amina).await;
    assert_eq!(b["total"], 3);
    let listed: Vec<(&str, &str)> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resource"]["period"]["start"].as_str().unwrap(),
                e["resource"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("2026-07-01", "London Borough of Tower Hamlets"),
            ("2026-03-01", "Birmingham City Council"),
            ("2026-01-05", "London Borough of Tower Hamlets")
        ]
    );
    let c = get_ok(
        &app,
        &format!("{C}/Flag?patient={CHILD}&code=CP-IS"),
        &amina,
    )
    .await;
    assert_eq!(c["total"], 3);
    let care_teams = resources(&c)
        .into_iter()
        .filter(|r| r["resourceType"] == "CareTeam")
        .count();
    assert_eq!(care_teams, 2, "one CareTeam per LA");
}

#[tokio::test]
async fn withdrawn_and_deleted_plans_are_absent_and_each_status_maps_as_the_contract_says() {
    let (app, _clock) = sandbox().await;
    let nhs = "9000000017";
    let future = plan(&app, nhs, LA_A, "FUT", "active", "2027-01-04", None).await;
    let ended = plan(
        &app,
        nhs,
        LA_A,
        "END",
        "active",
        "2026-01-05",
        Some("2026-11-30"),
    )
    .await;
    let finished = plan(
        &app,
        nhs,
        LA_A,
        "FIN",
        "finished",
        "2026-02-01",
        Some("2026-06-30"),
    )
    .await;
    let cancelled = plan(&app, nhs, LA_A, "CAN", "cancelled", "2026-03-01", None).await;
    let withdrawn = plan(
        &app,
        nhs,
        LA_A,
        "EIE",
        "entered-in-error",
        "2026-04-01",
        None,
    )
    .await;
    let deleted = plan(&app, nhs, LA_A, "DEL", "active", "2026-05-01", None).await;
    assert_eq!(
        app.delete(&format!("/EpisodeOfCare/{deleted}"), &app.social(LA_A))
            .await
            .status(),
        204
    );
    let amina = amina(&app);

    let b = get_ok(&app, &format!("{B}/CareTeam?patient={nhs}"), &amina).await;
    let status_of = |bundle: &Value, ty: &str, id: &str| -> String {
        resources(bundle)
            .into_iter()
            .find(|r| r["resourceType"] == ty && r["id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| "absent".into())
    };
    let c = get_ok(&app, &format!("{C}/Flag?patient={nhs}&code=CP-IS"), &amina).await;
    for (id, care_team, flag, care_plan) in [
        (&future, "proposed", "inactive", "draft"),
        (&ended, "inactive", "inactive", "completed"),
        (&finished, "inactive", "inactive", "completed"),
        (&cancelled, "inactive", "inactive", "revoked"),
        (&withdrawn, "absent", "absent", "absent"),
        (&deleted, "absent", "absent", "absent"),
    ] {
        assert_eq!(status_of(&b, "CareTeam", id), care_team, "B CareTeam {id}");
        assert_eq!(status_of(&c, "Flag", id), flag, "C Flag {id}");
        assert_eq!(status_of(&c, "CarePlan", id), care_plan, "C CarePlan {id}");
    }
    assert_eq!(b["total"], 4);
    for path in [
        format!("{B}/CareTeam/{withdrawn}"),
        format!("{C}/Flag/{withdrawn}"),
        format!("{C}/CarePlan/{withdrawn}"),
    ] {
        let res = view(&app, Method::GET, &path, Some(&amina), &[]).await;
        assert_eq!(res.status(), 404, "{path}");
    }
    for path in [
        format!("{B}/CareTeam/{deleted}"),
        format!("{C}/Flag/{deleted}"),
        format!("{C}/CarePlan/{deleted}"),
    ] {
        let res = view(&app, Method::GET, &path, Some(&amina), &[]).await;
        assert_eq!(res.status(), 410, "{path}");
    }
}

#[tokio::test]
async fn no_plan_is_an_empty_searchset_and_nothing_is_recorded() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    let before = audit_rows(&app);
    for path in [
        format!("{B}/CareTeam?patient=9000000017"),
        format!("{B}/AuditEvent?patient=9000000017"),
        format!("{C}/Flag?patient=9000000017"),
        format!("{C}/PatientFlag?patient={CHILD}&code=FGM"),
        format!("{C}/Flag?patient={CHILD}&category=https://example.org|other"),
    ] {
        let found = get_ok(&app, &path, &amina).await;
        assert_eq!(found["total"], 0, "{path}");
        assert_eq!(found["entry"].as_array().map_or(0, Vec::len), 0, "{path}");
    }
    assert_eq!(audit_rows(&app), before, "nothing recorded");
}

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

/// A rejected request: method, path, token, headers, and the status, Spine code and (where the
/// guides word it) diagnostics of its answer.
type Case<'a> = (
    Method,
    String,
    Option<String>,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
    Option<&'a str>,
);

#[tokio::test]
async fn only_health_care_reads_the_views_and_errors_take_the_guides_shape() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    let expect = |status: u16, spine: &'static str, diagnostics: Option<&'static str>| {
        move |outcome: Value| {
            assert_eq!(
                outcome["meta"]["profile"][0],
                "https://fhir.hl7.org.uk/StructureDefinition/UKCore-OperationOutcome"
            );
            assert_eq!(
                outcome["issue"][0]["details"]["coding"][0]["code"], spine,
                "{status}: {outcome}"
            );
            if let Some(text) = diagnostics {
                assert_eq!(outcome["issue"][0]["diagnostics"], text);
            }
        }
    };
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            format!("{B}/CareTeam?patient={CHILD}"),
            Some(app.social(LA_A)),
            vec![],
            403,
            "ACCESS_DENIED",
            Some("Access has been denied to process this request"),
        ),
        (
            Method::GET,
            format!("{C}/Flag?patient={CHILD}"),
            Some(app.ops()),
            vec![],
            403,
            "ACCESS_DENIED",
            Some("Access has been denied to process this request"),
        ),
        (
            Method::GET,
            format!("{B}/CareTeam?patient={CHILD}"),
            None,
            vec![],
            401,
            "ACCESS_DENIED",
            None,
        ),
        (
            Method::GET,
            format!("{B}/CareTeam?patient=9449306754"),
            Some(amina.clone()),
            vec![],
            400,
            "INVALID_SEARCH_DATA",
            Some("Invalid NHS number"),
        ),
        (
            Method::GET,
            format!("{B}/AuditEvent"),
            Some(amina.clone()),
            vec![],
            400,
            "INVALID_SEARCH_DATA",
            Some("Invalid NHS number"),
        ),
        (
            Method::GET,
            format!("{C}/Flag?patient=http://fhir.nhs.uk/id/nhs-number%7C{CHILD}"),
            Some(amina.clone()),
            vec![],
            400,
            "INVALID_SEARCH_DATA",
            Some("Invalid NHS number"),
        ),
        (
            Method::GET,
            format!("{B}/CareTeam?patient={CHILD}&status=active"),
            Some(amina.clone()),
            vec![],
            400,
            "INVALID_SEARCH_DATA",
            None,
        ),
        (
            Method::GET,
            format!("{B}/AuditEvent?patient={CHILD}&_include=AuditEvent:patient"),
            Some(amina.clone()),
            vec![],
            400,
            "INVALID_SEARCH_DATA",
            None,
        ),
        (
            Method::GET,
            format!("{C}/Flag?patient={CHILD}"),
            Some(amina.clone()),
            vec![("IsUnscheduledAccessEvent", "maybe")],
            400,
            "PRECONDITION_FAILED",
            Some("Missing or invalid header parameter"),
        ),
        (
            Method::POST,
            format!("{B}/CareTeam"),
            Some(amina.clone()),
            vec![],
            405,
            "UNSUPPORTED_SERVICE",
            None,
        ),
        (
            Method::PUT,
            format!("{C}/Flag/x"),
            Some(amina.clone()),
            vec![],
            405,
            "UNSUPPORTED_SERVICE",
            None,
        ),
        (
            Method::DELETE,
            format!("{C}/CarePlan/x"),
            Some(amina.clone()),
            vec![],
            405,
            "UNSUPPORTED_SERVICE",
            None,
        ),
        (
            Method::GET,
            format!("{B}/Flag?patient={CHILD}"),
            Some(amina.clone()),
            vec![],
            404,
            "RESOURCE_NOT_FOUND",
            None,
        ),
    ];
    let before = audit_rows(&app);
    for (method, path, token, headers, status, spine, diagnostics) in cases {
        let res = view(&app, method.clone(), &path, token.as_deref(), &headers).await;
        assert_eq!(res.status(), status, "{method} {path}");
        expect(status, spine, diagnostics)(res.json().await.unwrap());
    }
    assert_eq!(audit_rows(&app), before, "no rejected request is recorded");
    let traced = view(
        &app,
        Method::GET,
        &format!("{B}/CareTeam?patient={CHILD}"),
        Some(&amina),
        &[("TraceID", "7d3a1c5e-0000-4000-8000-000000000001")],
    )
    .await;
    assert_eq!(
        traced.headers()["traceid"],
        "7d3a1c5e-0000-4000-8000-000000000001"
    );
}

/// Each view's statement lists exactly what works: every interaction, parameter and include
/// it names is exercised, and the native statement names none of the views' types.
#[tokio::test]
async fn each_view_s_metadata_lists_exactly_what_works() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    for (base, sample_value) in [(B, CHILD), (C, CHILD)] {
        let cs = get_ok(&app, &format!("{base}/metadata"), "").await;
        assert_eq!(
            cs["implementation"]["url"],
            format!("{}{base}", app.address)
        );
        for resource in cs["rest"][0]["resource"].as_array().unwrap() {
            let ty = resource["type"].as_str().unwrap();
            let interactions: Vec<&str> = resource["interaction"]
                .as_array()
                .map(|i| i.iter().map(|i| i["code"].as_str().unwrap()).collect())
                .unwrap_or_default();
            let search = format!("{base}/{ty}?patient={sample_value}");
            let res = view(&app, Method::GET, &search, Some(&amina), &[]).await;
            assert_eq!(
                res.status() == 200,
                interactions.contains(&"search-type"),
                "{search}"
            );
            if interactions.contains(&"search-type") {
                for p in resource["searchParam"].as_array().unwrap() {
                    let name = p["name"].as_str().unwrap();
                    let path = match name {
                        "patient" => format!("{base}/{ty}?patient:identifier={NHS}|{sample_value}"),
                        other => format!("{base}/{ty}?patient={sample_value}&{other}=CP-IS"),
                    };
                    let found = get_ok(&app, &path, &amina).await;
                    assert!(found["total"].as_i64().unwrap() > 0, "{path}");
                }
                for include in resource["searchInclude"].as_array().into_iter().flatten() {
                    let include = include.as_str().unwrap().replace('|', "%7C");
                    let param = if include.starts_with("CarePlan:") {
                        "_include:iterate"
                    } else {
                        "_include"
                    };
                    get_ok(
                        &app,
                        &format!("{base}/{ty}?patient={sample_value}&{param}={include}"),
                        &amina,
                    )
                    .await;
                }
            }
        }
        // Reads: each id a search returns, at the type the statement lists as readable.
        let readable: Vec<String> = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["interaction"]
                    .as_array()
                    .is_some_and(|i| i.iter().any(|i| i["code"] == "read"))
            })
            .map(|r| r["type"].as_str().unwrap().to_string())
            .collect();
        let everything = if base == B {
            get_ok(&app, &format!("{B}/CareTeam?patient={CHILD}"), &amina).await
        } else {
            get_ok(
                &app,
                &format!("{C}/Flag?patient={CHILD}&code=CP-IS"),
                &amina,
            )
            .await
        };
        for r in resources(&everything) {
            let ty = r["resourceType"].as_str().unwrap();
            let path = format!("{base}/{ty}/{}", r["id"].as_str().unwrap());
            let res = view(&app, Method::GET, &path, Some(&amina), &[]).await;
            assert_eq!(
                res.status() == 200,
                readable.contains(&ty.to_string()),
                "{path}"
            );
        }
    }
    let native = body(app.get("/metadata", &app.ops()).await)
        .await
        .to_string();
    for ty in ["CareTeam", "CarePlan", "PractitionerRole", "PatientFlag"] {
        assert!(
            !native.contains(ty),
            "the native statement is unchanged: no {ty}"
        );
    }
}

/// View B does not read AuditEvents by id (NHS-COMPAT §13): 405 with `Allow`, whatever the id.
#[tokio::test]
async fn view_b_audit_event_read_is_405_with_allow() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    let history = get_ok(
        &app,
        &format!("{B}/AuditEvent?patient:identifier={NHS}|{CHILD}"),
        &amina,
    )
    .await;
    let id = history["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = audit_rows(&app);
    for (method, path) in [
        (Method::GET, format!("{B}/AuditEvent/{id}")),
        (Method::GET, format!("{B}/AuditEvent/no-such-id")),
        (Method::DELETE, format!("{B}/AuditEvent/{id}")),
    ] {
        let res = view(&app, method.clone(), &path, Some(&amina), &[]).await;
        assert_eq!(res.status(), 405, "{method} {path}");
        assert!(res.headers().contains_key("allow"), "{method} {path}");
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(spine_code(&outcome), "UNSUPPORTED_SERVICE", "{outcome}");
        assert_eq!(
            outcome["meta"]["profile"][0],
            "https://fhir.hl7.org.uk/StructureDefinition/UKCore-OperationOutcome"
        );
    }
    assert_eq!(audit_rows(&app), before, "nothing read, nothing recorded");
}
