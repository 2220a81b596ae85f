//! The AuditEvent of one access to one child's record (SPEC §3), and the care setting it was
//! made from (`IsUnscheduledAccessEvent`).

mod document;

pub use document::to_json;

use super::types::{NHS_NUMBER_SYSTEM, ODS_SYSTEM, PROFILE_BASE};
use crate::attendance::Summary;
use crate::auth::Identity;

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

    /// The setting as `as_str` stores it.
    pub fn from_stored(s: &str) -> Option<CareSetting> {
        [CareSetting::Unscheduled, CareSetting::Scheduled]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A governance report (SPEC §2 `governance`): whose accesses an officer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Every access to one child (by NHS number).
    PatientAccess,
    /// Every access by one user (SDS user id).
    UserAccess,
    /// Every access from one organisation (ODS code).
    OrganisationAccess,
}

impl Report {
    const ALL: [Report; 3] = [
        Report::PatientAccess,
        Report::UserAccess,
        Report::OrganisationAccess,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Report::PatientAccess => "patient-access",
            Report::UserAccess => "user-access",
            Report::OrganisationAccess => "organisation-access",
        }
    }

    /// The identifier system of what the report is about.
    pub fn subject_system(self) -> &'static str {
        match self {
            Report::PatientAccess => NHS_NUMBER_SYSTEM,
            Report::UserAccess => SDS_USER_SYSTEM,
            Report::OrganisationAccess => ODS_SYSTEM,
        }
    }
}

/// Why an access was made: care, from a care setting; or a governance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Care(CareSetting),
    Report(Report),
}

impl Purpose {
    /// As stored (the `care_setting` column): the care setting, or the report's name.
    pub fn as_stored(self) -> &'static str {
        match self {
            Purpose::Care(setting) => setting.as_str(),
            Purpose::Report(report) => report.as_str(),
        }
    }

    pub fn from_stored(s: &str) -> Option<Purpose> {
        CareSetting::from_stored(s).map(Purpose::Care).or_else(|| {
            Report::ALL
                .into_iter()
                .find(|r| r.as_str() == s)
                .map(Purpose::Report)
        })
    }
}

/// The REST interaction that made the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Read,
    VRead,
    History,
    Search,
}

impl AccessKind {
    const ALL: [AccessKind; 4] = [
        AccessKind::Read,
        AccessKind::VRead,
        AccessKind::History,
        AccessKind::Search,
    ];

    /// Its `restful-interaction` code (`AuditEvent.subtype`).
    pub fn interaction(self) -> &'static str {
        match self {
            AccessKind::Read => "read",
            AccessKind::VRead => "vread",
            AccessKind::History => "history-instance",
            AccessKind::Search => "search-type",
        }
    }

    /// The kind whose `interaction` code this is.
    pub fn from_interaction(code: &str) -> Option<AccessKind> {
        AccessKind::ALL
            .into_iter()
            .find(|k| k.interaction() == code)
    }
}

/// What the AuditEvent records.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    pub id: &'a str,
    pub recorded_ms: i64,
    /// What was accessed: the child's NHS number, or what a report was about.
    pub subject: &'a str,
    pub kind: AccessKind,
    pub purpose: Purpose,
    pub who: &'a Identity,
    /// `Flag/{id}` / `EpisodeOfCare/{id}` references of what was returned.
    pub entities: &'a [String],
    /// This server's base URL (the observer).
    pub observer: &'a str,
    /// The child's attendance summary as of this access (unscheduled health-care accesses).
    pub attendance: Option<&'a Summary>,
}

/// The extension that carries a child's attendance summary (`fhir-profiles/`
/// `StructureDefinition-attendance-summary.json`).
pub const ATTENDANCE_EXTENSION: &str =
    "https://fhir.cpis.example.org/StructureDefinition/attendance-summary";

/// Whether an AuditEvent (as JSON) is the access that first brought its child to a pattern.
pub fn reaches_attendance_pattern(event: &serde_json::Value) -> bool {
    event
        .get("extension")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("url").and_then(serde_json::Value::as_str) == Some(ATTENDANCE_EXTENSION))
        .flat_map(|e| {
            e.get("extension")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|part| {
            part.get("url").and_then(serde_json::Value::as_str) == Some("patternReached")
                && part.get("valueBoolean") == Some(&serde_json::Value::Bool(true))
        })
}

pub fn profile() -> String {
    format!("{PROFILE_BASE}CPIS-AuditEvent")
}

/// An unscheduled search by a nurse that brought the child to an attendance pattern, as its
/// AuditEvent: for the tests here and the profile's (`validation`).
#[cfg(test)]
pub(crate) fn example() -> serde_json::Value {
    let who = Identity {
        sub: "555021935107".into(),
        role: crate::auth::Role::HealthCare,
        name: Some("Jane Smith".into()),
        org: Some("RJ1".into()),
        org_name: Some("St Thomas' Hospital".into()),
        job_role: Some("Staff Nurse".into()),
        job_role_code: Some("R8001".into()),
    };
    let entities = vec!["Flag/abc".to_string()];
    let summary = Summary {
        attendances: 3,
        settings: 3,
        window_days: 30,
        pattern: true,
        first: true,
    };
    serde_json::from_str(&to_json(&Access {
        id: "3f1c0a5e-0000-4000-8000-000000000001",
        recorded_ms: 1_790_000_000_000,
        subject: "9449306753",
        kind: AccessKind::Search,
        purpose: Purpose::Care(CareSetting::Unscheduled),
        who: &who,
        entities: &entities,
        observer: "http://127.0.0.1/FHIR/R4",
        attendance: Some(&summary),
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Its profile is checked where the profiles are (`validation`'s tests).
    #[test]
    fn an_access_builds_an_audit_event() {
        let event = example();
        assert_eq!(event["action"], "E");
        assert_eq!(event["agent"][0]["role"][0]["coding"][0]["code"], "R8001");
        assert_eq!(event["agent"][1]["who"]["identifier"]["value"], "RJ1");
        assert_eq!(
            event["entity"][0]["detail"][0]["valueString"],
            "unscheduled"
        );
        assert_eq!(event["entity"][1]["what"]["reference"], "Flag/abc");
        assert!(reaches_attendance_pattern(&event));
        assert_eq!(event["extension"][0]["extension"][1]["valueUnsignedInt"], 3);
    }
}
