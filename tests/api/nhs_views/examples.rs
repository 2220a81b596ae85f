//! The guides' examples, answered field for field.

use super::*;

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
        care_team_example()
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
    assert_eq!(without_ids(first), audit_event_example(&observer));
    assert_eq!(second["agent"][0]["who"]["display"], "Sam Okafor");
    assert_eq!(without_ids(first_role), amina_role_example());
    assert_eq!(without_ids(second_role), sam_role_example());
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
    assert_eq!(without_ids(flag.clone()), flag_example());
    assert_eq!(without_ids(care_plan.clone()), care_plan_example());
    assert_eq!(without_ids(care_team.clone()), care_team_flag_example());
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

/// View B's CareTeam, as the guide shows it.
fn care_team_example() -> Value {
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
}

/// View B's AuditEvent of the contract's clinician, as the guide shows it.
fn audit_event_example(observer: &str) -> Value {
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
}

/// The contract's clinician as a PractitionerRole.
fn amina_role_example() -> Value {
    json!({
        "resourceType": "PractitionerRole",
        "practitioner": {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555021935107"}, "display": "Dr Amina Rahman"},
        "organization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "R1H"}, "display": "Barts Health NHS Trust"},
        "code": [{"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/NHSDigital-SDS-JobRoleCode", "code": "R8000", "display": "Clinical Practitioner Access Role"}], "text": "Clinical Practitioner Access Role"}]
    })
}

/// The earlier nurse as a PractitionerRole: no job-role code, so no system.
fn sam_role_example() -> Value {
    json!({
        "resourceType": "PractitionerRole",
        "practitioner": {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555021936201"}, "display": "Sam Okafor"},
        "organization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RQX"}, "display": "Homerton Healthcare NHS Foundation Trust"},
        "code": [{"coding": [{"display": "Staff Nurse"}], "text": "Staff Nurse"}]
    })
}

/// View C's Flag, as the guide shows it.
fn flag_example() -> Value {
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
}

/// View C's CarePlan, as the guide shows it.
fn care_plan_example() -> Value {
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
}

/// View C's CareTeam, as the guide shows it.
fn care_team_flag_example() -> Value {
    json!({
        "resourceType": "CareTeam",
        "meta": profile("England-CareTeam-Flag"),
        "status": "active",
        "name": "London Borough of Tower Hamlets",
        "managingOrganization": [tower_hamlets()],
        "telecom": tower_hamlets_contacts()
    })
}

/// The `meta` of a resource of view C: its England profile.
fn profile(name: &str) -> Value {
    json!({"profile": [format!("https://fhir.nhs.uk/England/StructureDefinition/{name}")]})
}
