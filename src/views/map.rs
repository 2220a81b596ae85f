//! What both views take from the native resources: a plan's phase today (for the status
//! tables of `NHS-COMPAT.md` §0), logical references, the LA's phones, `meta.lastUpdated`.

use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::fhir::bundle::SearchEntry;
use crate::fhir::period::{DayPeriod, Standing};
use crate::fhir::types::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};

/// Where a plan health-care may see stands today (an `entered-in-error` one is never shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Active, and today lies within its period.
    InForce,
    /// Active, starting after today.
    NotYetStarted,
    /// Active, but its period ended before today.
    Ended,
    Finished,
    Cancelled,
}

/// The phase of a native EpisodeOfCare on `today` (the UK date).
pub fn phase(plan: &Value, today: NaiveDate) -> Phase {
    match plan.get("status").and_then(Value::as_str) {
        Some("finished") => Phase::Finished,
        Some("cancelled") => Phase::Cancelled,
        _ => match DayPeriod::of_resource(plan).standing(today) {
            Standing::NotYetStarted => Phase::NotYetStarted,
            Standing::InForce => Phase::InForce,
            Standing::Ended => Phase::Ended,
        },
    }
}

pub fn str_at<'a>(resource: &'a Value, pointer: &str) -> &'a str {
    resource
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The child as the guides reference it: a logical reference by NHS number.
pub fn patient(nhs: &str) -> Value {
    json!({"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs}})
}

/// The child a native plan is held against.
pub fn plan_patient(plan: &Value) -> Value {
    patient(str_at(plan, "/patient/identifier/value"))
}

/// An LA (native Organization) as a logical reference by ODS code, with its name.
pub fn la_reference(org: &Value) -> Value {
    json!({
        "type": "Organization",
        "identifier": {"system": ODS_SYSTEM, "value": str_at(org, "/identifier/0/value")},
        "display": str_at(org, "/name"),
    })
}

/// The LA's office-hours (`work`) then emergency-duty (`mobile`) phone.
pub fn phones(org: &Value) -> Vec<Value> {
    let telecom = org["telecom"].as_array().cloned().unwrap_or_default();
    ["work", "mobile"]
        .iter()
        .filter_map(|usage| {
            telecom
                .iter()
                .find(|t| t["use"] == *usage)
                .map(|t| json!({"system": "phone", "value": t["value"], "use": usage}))
        })
        .collect()
}

/// The plan's type coding (SNOMED CT), as stored.
pub fn plan_type(plan: &Value) -> Value {
    plan.pointer("/type/0/coding/0")
        .cloned()
        .unwrap_or(Value::Null)
}

/// The plan's period (whole dates).
pub fn period(plan: &Value) -> Value {
    plan.get("period").cloned().unwrap_or(Value::Null)
}

/// The later `meta.lastUpdated` of the sources of a view resource.
pub fn last_updated(sources: &[&Value]) -> Value {
    sources
        .iter()
        .filter_map(|s| s.pointer("/meta/lastUpdated").and_then(Value::as_str))
        .max()
        .map_or(Value::Null, |t| json!(t))
}

/// The native Organization of the LA that manages `plan`, among `organizations`.
pub fn managing_la<'a>(plan: &Value, organizations: &'a [Value]) -> Option<&'a Value> {
    let ods = str_at(plan, "/managingOrganization/identifier/value");
    organizations
        .iter()
        .find(|o| str_at(o, "/identifier/0/value").eq_ignore_ascii_case(ods))
}

/// A searchset's resources: the matches, then the included ones.
pub fn matches_and_includes(entries: Vec<SearchEntry>) -> (Vec<Value>, Vec<Value>) {
    let (matches, includes): (Vec<SearchEntry>, Vec<SearchEntry>) =
        entries.into_iter().partition(|e| e.mode == "match");
    (
        matches.into_iter().map(|e| e.resource).collect(),
        includes.into_iter().map(|e| e.resource).collect(),
    )
}

/// Items newest first by their plan's `period.start`, then by the plan's id: the order both
/// views list plans in.
pub fn newest_first<T>(items: &mut [T], plan: impl Fn(&T) -> &Value) {
    items.sort_by(|a, b| {
        let (a, b) = (plan(a), plan(b));
        str_at(b, "/period/start")
            .cmp(str_at(a, "/period/start"))
            .then_with(|| str_at(a, "/id").cmp(str_at(b, "/id")))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(status: &str, start: &str, end: Option<&str>) -> Value {
        let mut p = json!({"status": status, "period": {"start": start}});
        if let Some(end) = end {
            p["period"]["end"] = json!(end);
        }
        p
    }

    #[test]
    fn a_plans_phase_follows_its_status_and_today() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        for (status, start, end, expected) in [
            ("active", "2026-01-05", None, Phase::InForce),
            ("active", "2026-12-01", Some("2026-12-01"), Phase::InForce),
            ("active", "2026-12-02", None, Phase::NotYetStarted),
            ("active", "2026-01-05", Some("2026-11-30"), Phase::Ended),
            ("finished", "2026-01-05", None, Phase::Finished),
            ("cancelled", "2027-01-05", None, Phase::Cancelled),
        ] {
            assert_eq!(
                phase(&plan(status, start, end), today),
                expected,
                "{status} {start} {end:?}"
            );
        }
    }

    #[test]
    fn phones_come_office_hours_first_whatever_the_stored_order() {
        let org = json!({"telecom": [
            {"system": "phone", "value": "2", "use": "mobile"},
            {"system": "phone", "value": "1", "use": "work"}
        ]});
        assert_eq!(
            phones(&org),
            [
                json!({"system": "phone", "value": "1", "use": "work"}),
                json!({"system": "phone", "value": "2", "use": "mobile"})
            ]
        );
    }
}
