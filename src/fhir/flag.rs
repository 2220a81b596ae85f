//! Flag: the alert a clinician sees, derived from a plan (SPEC §3). Read-only to clients.
//!
//! The stored Flag's `status` is the plan's date-independent state: `active` for an active plan,
//! `inactive` for a finished/cancelled one, `entered-in-error`. What a client sees is
//! `status_today`: an active plan's Flag is `inactive` outside its period, judged on the day of
//! the request in England (`clock::uk_date`), so the alert follows the calendar with nobody
//! touching the plan.

use serde_json::{json, Value};

use super::episode_of_care::{Plan, PlanStatus};
use super::index::{DateEntry, Index, IndexEntries, TokenEntry};
use super::organization::LocalAuthority;
use super::period::{DayPeriod, Standing};
use super::types::{identifier_reference, NHS_NUMBER_SYSTEM, ODS_SYSTEM};
use crate::clock::uk_date;

pub const CATEGORY_SYSTEM: &str = "https://fhir.nhs.uk/England/CodeSystem/PatientFlagCategory";
pub const FLAG_DETAIL_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/flag-detail";

/// The stored (date-independent) status of the Flag of a plan in `status`.
pub fn stored_status(status: PlanStatus) -> &'static str {
    match status {
        PlanStatus::Active => "active",
        PlanStatus::Finished | PlanStatus::Cancelled => "inactive",
        PlanStatus::EnteredInError => "entered-in-error",
    }
}

/// The Flag of plan `plan_id`, authored by its LA (`org_id` is the LA's Organization id).
pub fn derive(plan_id: &str, plan: &Plan, org_id: &str, la: &LocalAuthority) -> Value {
    let mut period = json!({"start": plan.start.to_string()});
    if let (Some(end), Some(obj)) = (plan.end, period.as_object_mut()) {
        obj.insert("end".into(), json!(end.to_string()));
    }
    json!({
        "resourceType": "Flag",
        "extension": [{
            "url": FLAG_DETAIL_EXTENSION,
            "valueReference": {"reference": format!("EpisodeOfCare/{plan_id}")}
        }],
        "status": stored_status(plan.status),
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "CP-IS", "display": "CP-IS"}]}],
        "code": {
            "coding": [{
                "system": super::types::SNOMED_SYSTEM,
                "code": plan.plan_type.code(),
                "display": plan.plan_type.display()
            }],
            "text": plan.plan_type.display()
        },
        "subject": identifier_reference(NHS_NUMBER_SYSTEM, plan.patient.as_str()),
        "period": period,
        "author": {
            "reference": format!("Organization/{org_id}"),
            "identifier": {"system": ODS_SYSTEM, "value": la.ods},
            "display": la.name
        }
    })
}

/// Index entries of a Flag: `patient`, the stored status and the period (for `status` search),
/// and the authoring LA (so an LA's searches see only its own flags).
pub fn index_entries(plan: &Plan) -> IndexEntries {
    IndexEntries {
        tokens: vec![
            TokenEntry::new(Index::Patient, NHS_NUMBER_SYSTEM, plan.patient.as_str()),
            TokenEntry::new(Index::StoredStatus, "", stored_status(plan.status)),
            TokenEntry::new(Index::Organization, ODS_SYSTEM, &plan.managing_ods),
        ],
        dates: vec![DateEntry {
            param: Index::Period,
            start_ms: plan.start_ms(),
            end_ms: plan.end_ms(),
        }],
    }
}

/// The status a client sees at `now_ms`.
pub fn status_today(flag: &Value, now_ms: i64) -> &'static str {
    match flag.get("status").and_then(Value::as_str) {
        Some("entered-in-error") => "entered-in-error",
        Some("active") => match DayPeriod::of_resource(flag).standing(uk_date(now_ms)) {
            Standing::InForce => "active",
            Standing::NotYetStarted | Standing::Ended => "inactive",
        },
        _ => "inactive",
    }
}

/// Sets the Flag's status to what it is at `now_ms`.
pub fn render(flag: &mut Value, now_ms: i64) {
    let status = status_today(flag, now_ms);
    if let Some(obj) = flag.as_object_mut() {
        obj.insert("status".into(), json!(status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::day_start_ms;
    use chrono::NaiveDate;

    fn ms(y: i32, m: u32, d: u32) -> i64 {
        day_start_ms(NaiveDate::from_ymd_opt(y, m, d).unwrap()) + 3_600_000
    }

    #[test]
    fn the_day_is_the_day_in_england() {
        let starts_1_june = json!({"status": "active", "period": {"start": "2026-06-01"}});
        let ended_31_may =
            json!({"status": "active", "period": {"start": "2026-01-05", "end": "2026-05-31"}});
        // 23:30 UTC on 31 May is 00:30 BST on 1 June.
        let half_past_midnight_bst = day_start_ms(NaiveDate::from_ymd_opt(2026, 5, 31).unwrap())
            + 23 * 3_600_000
            + 30 * 60_000;
        assert_eq!(
            status_today(&starts_1_june, half_past_midnight_bst),
            "active"
        );
        assert_eq!(
            status_today(&ended_31_may, half_past_midnight_bst),
            "inactive"
        );
    }

    #[test]
    fn an_active_plan_flag_follows_the_calendar() {
        let flag =
            json!({"status": "active", "period": {"start": "2026-01-05", "end": "2026-06-30"}});
        assert_eq!(status_today(&flag, ms(2026, 1, 4)), "inactive");
        assert_eq!(status_today(&flag, ms(2026, 1, 5)), "active");
        assert_eq!(status_today(&flag, ms(2026, 6, 30)), "active");
        assert_eq!(status_today(&flag, ms(2026, 7, 1)), "inactive");
    }

    #[test]
    fn finished_and_withdrawn_plans_never_flag_active() {
        let period = json!({"start": "2026-01-05"});
        let finished = json!({"status": "inactive", "period": period});
        let withdrawn = json!({"status": "entered-in-error", "period": period});
        assert_eq!(status_today(&finished, ms(2026, 2, 1)), "inactive");
        assert_eq!(status_today(&withdrawn, ms(2026, 2, 1)), "entered-in-error");
    }
}
