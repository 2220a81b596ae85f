//! Sample data for `CPIS_SANDBOX=1`: three local authorities and one plan of each type, on the
//! SPEC's test NHS numbers. Seeding is idempotent (conditional writes by identifier).

use serde_json::json;

use crate::auth::Identity;
use crate::auth::{Caller, Role};
use crate::db::DbConn;
use crate::error::FhirError;
use crate::fhir::types::{NHS_NUMBER_SYSTEM, ODS_SYSTEM, SNOMED_SYSTEM};
use crate::service;
use crate::service::plan::{PlanInput, PlanWrites};
use crate::validation::Profiles;

/// (ODS, name, office-hours phone, emergency duty team phone)
pub const LOCAL_AUTHORITIES: [(&str, &str, &str, &str); 3] = [
    (
        "E09000030",
        "London Borough of Tower Hamlets",
        "020 7364 5006",
        "020 7364 4079",
    ),
    (
        "E08000025",
        "Birmingham City Council",
        "0121 303 1888",
        "0121 675 4806",
    ),
    (
        "E10000016",
        "Kent County Council",
        "03000 41 11 11",
        "03000 41 91 91",
    ),
];

/// (NHS number, plan type code, managing LA, plan reference, start)
pub const PLANS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "9449306753",
        "342191000000101",
        "E09000030",
        "CPP-0001",
        "2026-01-05",
    ),
    (
        "9000000009",
        "764841000000100",
        "E08000025",
        "LAC-0001",
        "2025-09-01",
    ),
    (
        "9912003888",
        "818901000000100",
        "E10000016",
        "UCPP-0001",
        "2026-06-15",
    ),
];

/// The plan identifier system an LA uses in the sandbox.
pub fn plan_system(ods: &str) -> String {
    format!("https://fhir.{}.gov.uk/Id/plan", ods.to_ascii_lowercase())
}

fn caller(role: Role, org: &str) -> Caller {
    Caller(Identity {
        sub: "sandbox-seed".into(),
        role,
        name: Some("Sandbox seed".into()),
        org: Some(org.into()),
        org_name: None,
        job_role: None,
        job_role_code: None,
    })
}

pub fn seed(conn: &mut DbConn, profiles: &Profiles, now: i64) -> Result<(), FhirError> {
    for (ods, name, work, mobile) in LOCAL_AUTHORITIES {
        if service::organization::find_la(conn, ods)?.is_some() {
            continue;
        }
        let org = json!({
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": ods}],
            "active": true,
            "name": name,
            "telecom": [
                {"system": "phone", "value": work, "use": "work"},
                {"system": "phone", "value": mobile, "use": "mobile"}
            ]
        });
        let la = service::organization::check(profiles, &org)?;
        service::organization::create(conn, &caller(Role::Operations, "X26"), org, la, now)?;
    }
    for (nhs, code, ods, reference, start) in PLANS {
        let system = plan_system(ods);
        let plan = json!({
            "resourceType": "EpisodeOfCare",
            "identifier": [{"system": system, "value": reference}],
            "status": "active",
            "type": [{"coding": [{"system": SNOMED_SYSTEM, "code": code}]}],
            "patient": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs}},
            "managingOrganization": {"identifier": {"system": ODS_SYSTEM, "value": ods}},
            "period": {"start": start}
        });
        let input = PlanInput::check(profiles, plan)?;
        let la = caller(Role::SocialCare, ods);
        service::plan::upsert(
            conn,
            &mut PlanWrites::alone(&la, now),
            &(system, reference.to_string()),
            &input,
            None,
        )?;
    }
    tracing::info!(
        local_authorities = LOCAL_AUTHORITIES.len(),
        plans = PLANS.len(),
        "sandbox data seeded"
    );
    Ok(())
}
