//! The AuditEvent of one access to one child's record (SPEC §3), and the care setting it was
//! made from (`IsUnscheduledAccessEvent`).

use serde_json::{json, Value};

use super::types::{instant, NHS_NUMBER_SYSTEM, ODS_SYSTEM, PROFILE_BASE};
use crate::auth::jwt::Identity;

pub const SDS_USER_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-user-id";
pub const SDS_JOB_ROLE_SYSTEM: &str = "https://fhir.nhs.uk/CodeSystem/NHSDigital-SDS-JobRoleCode";
/// The header that says whether an access is from unscheduled care.
pub const CARE_SETTING_HEADER: &str = "IsUnscheduledAccessEvent";

/// Where the access was made from: only unscheduled accesses are shown and notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CareSetting {
    Unscheduled,
    Scheduled,
}

impl CareSetting {
    /// `IsUnscheduledAccessEvent`: absent means unscheduled (as the NHS CP-IS API defines);
    /// `true`/`false` in any letter case; anything else is `Err` with the reason.
    pub fn from_header(value: Option<&str>) -> Result<CareSetting, String> {
        match value.map(str::trim) {
            None => Ok(CareSetting::Unscheduled),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(CareSetting::Unscheduled),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(CareSetting::Scheduled),
            Some(_) => Err(format!("{CARE_SETTING_HEADER} must be true or false")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CareSetting::Unscheduled => "unscheduled",
            CareSetting::Scheduled => "scheduled",
        }
    }
}

/// The REST interaction that made the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Read,
    Search,
}

/// What the AuditEvent records.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    pub id: &'a str,
    pub recorded_ms: i64,
    pub nhs_number: &'a str,
    pub kind: AccessKind,
    pub care_setting: CareSetting,
    pub who: &'a Identity,
    /// `Flag/{id}` / `EpisodeOfCare/{id}` references of what was returned.
    pub entities: &'a [String],
    /// This server's base URL (the observer).
    pub observer: &'a str,
}

pub fn profile() -> String {
    format!("{PROFILE_BASE}CPIS-AuditEvent")
}

/// Builds the AuditEvent. Only who, when, their role and organisation, and which child: no
/// clinical detail (SPEC §1).
pub fn build(access: &Access<'_>) -> Value {
    let who = access.who;
    let (subtype, action) = match access.kind {
        AccessKind::Read => ("read", "R"),
        AccessKind::Search => ("search-type", "E"),
    };
    let display = who.name.clone().unwrap_or_else(|| who.sub.clone());
    let mut person = json!({
        "who": {
            "identifier": {"system": SDS_USER_SYSTEM, "value": who.sub},
            "display": display,
        },
        "name": display,
        "requestor": true,
    });
    if let Some(role) = job_role(who) {
        set(&mut person, "role", json!([role]));
    }
    let mut agents = vec![person];
    if let Some(org) = &who.org {
        let mut who_org = json!({"identifier": {"system": ODS_SYSTEM, "value": org}});
        if let Some(name) = &who.org_name {
            set(&mut who_org, "display", json!(name));
        }
        agents.push(json!({"who": who_org, "requestor": false}));
    }
    let mut entities = vec![json!({
        "what": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": access.nhs_number}},
        "detail": [{"type": "care-setting", "valueString": access.care_setting.as_str()}],
    })];
    entities.extend(
        access
            .entities
            .iter()
            .map(|reference| json!({"what": {"reference": reference}})),
    );
    json!({
        "resourceType": "AuditEvent",
        "id": access.id,
        "meta": {
            "versionId": "1",
            "lastUpdated": instant(access.recorded_ms),
            "profile": [profile()],
        },
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": instant(access.recorded_ms),
        "outcome": "0",
        "agent": agents,
        "source": {"observer": {"display": access.observer}},
        "entity": entities,
    })
}

/// Sets `key` on a JSON object (built here, so always an object).
fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.into(), value);
    }
}

/// `role[0]`: the job role's text, with its SDS coding when a code was given.
fn job_role(who: &Identity) -> Option<Value> {
    let mut role = json!({});
    if let Some(text) = &who.job_role {
        set(&mut role, "text", json!(text));
    }
    if let Some(code) = &who.job_role_code {
        let mut coding = json!({"system": SDS_JOB_ROLE_SYSTEM, "code": code});
        if let Some(text) = &who.job_role {
            set(&mut coding, "display", json!(text));
        }
        set(&mut role, "coding", json!([coding]));
    }
    (who.job_role.is_some() || who.job_role_code.is_some()).then_some(role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::validation::Profiles;

    fn nurse() -> Identity {
        Identity {
            sub: "555021935107".into(),
            role: Role::HealthCare,
            name: Some("Jane Smith".into()),
            org: Some("RJ1".into()),
            org_name: Some("St Thomas' Hospital".into()),
            job_role: Some("Staff Nurse".into()),
            job_role_code: Some("R8001".into()),
        }
    }

    #[test]
    fn the_care_setting_header_is_unscheduled_when_absent_and_case_insensitive() {
        assert_eq!(CareSetting::from_header(None), Ok(CareSetting::Unscheduled));
        assert_eq!(
            CareSetting::from_header(Some("TRUE")),
            Ok(CareSetting::Unscheduled)
        );
        assert_eq!(
            CareSetting::from_header(Some("False")),
            Ok(CareSetting::Scheduled)
        );
        assert!(CareSetting::from_header(Some("yes")).is_err());
        assert!(CareSetting::from_header(Some("")).is_err());
    }

    #[test]
    fn an_access_builds_an_audit_event_that_meets_its_profile() {
        let who = nurse();
        let entities = vec!["Flag/abc".to_string()];
        let event = build(&Access {
            id: "3f1c0a5e-0000-4000-8000-000000000001",
            recorded_ms: 1_790_000_000_000,
            nhs_number: "9449306753",
            kind: AccessKind::Search,
            care_setting: CareSetting::Unscheduled,
            who: &who,
            entities: &entities,
            observer: "http://127.0.0.1/FHIR/R4",
        });
        let profiles = Profiles::load().unwrap();
        assert_eq!(
            profiles.validate("AuditEvent", "AuditEvent", &event),
            vec![]
        );
        assert_eq!(event["action"], "E");
        assert_eq!(event["agent"][0]["role"][0]["coding"][0]["code"], "R8001");
        assert_eq!(event["agent"][1]["who"]["identifier"]["value"], "RJ1");
        assert_eq!(
            event["entity"][0]["detail"][0]["valueString"],
            "unscheduled"
        );
        assert_eq!(event["entity"][1]["what"]["reference"], "Flag/abc");
    }
}
