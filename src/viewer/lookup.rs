//! A viewer lookup (SPEC §10 "The same access"): the API's own Flag search, through
//! `Auditor::disclosing` with the lookup's care setting, so the result page is recorded,
//! collapsed, notified and counted exactly as an API lookup by the same clinician with the
//! same answer. The Previous views are the clinician's access history, planned inside the
//! disclosure (`access_history::clinician_history`, recording nothing more) and read once the
//! access is committed, so they hold this one.

use chrono_tz::Europe::London;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::audit::Reader;
use crate::auth::Caller;
use crate::clock::to_datetime;
use crate::clock::uk_date;
use crate::error::FhirError;
use crate::fhir::audit_event::{AccessKind, CareSetting, ATTENDANCE_EXTENSION};
use crate::fhir::episode_of_care::PlanType;
use crate::fhir::nhs_number::NhsNumber;
use crate::fhir::ResourceType;
use crate::service::{access_history, search as plan_search};
use crate::views::map::{self, Phase};

/// What a result page shows: kept in the session (JSON) for the GET after the redirect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The NHS number looked up, spaced for reading (`944 930 6753`).
    pub nhs_number: String,
    /// When, in UK time.
    pub looked_up: String,
    pub unscheduled: bool,
    pub current: Vec<Card>,
    pub ended: Vec<Card>,
    /// The child's most recent unscheduled accesses (this one included), newest first.
    pub views: Vec<View>,
    /// The attendance summary, when it is a pattern.
    pub pattern: Option<Pattern>,
}

impl Outcome {
    /// Whether any plan was found (otherwise: "No child protection information found").
    pub fn found(&self) -> bool {
        !self.current.is_empty() || !self.ended.is_empty()
    }

    /// The LAs told of an unscheduled lookup (named in its banner).
    pub fn las(&self) -> Vec<String> {
        let mut las: Vec<String> = self
            .current
            .iter()
            .chain(&self.ended)
            .map(|c| c.la_name.clone())
            .collect();
        las.sort();
        las.dedup();
        las
    }
}

/// One plan, as its card shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub kind: String,
    pub description: String,
    pub start: String,
    pub end: Option<String>,
    /// The plan starts after today.
    pub not_yet_started: bool,
    pub la_name: String,
    pub la_ods: String,
    pub office_hours: Option<Phone>,
    pub emergency_duty: Option<Phone>,
}

/// A phone number as shown, and its `tel:` target (digits and `+` only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    pub shown: String,
    pub tel: String,
}

/// One previous view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub when: String,
    pub viewer: String,
    pub job_role: String,
    pub organisation: String,
}

/// A repeated-attendance pattern, as of the newest view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    pub attendances: u64,
    pub settings: u64,
    pub window_days: u64,
}

/// Looks `nhs` up as `caller` from `setting`: the access recorded (when a plan is found)
/// before anything is returned.
pub async fn look_up(
    state: &AppState,
    caller: Caller,
    nhs: NhsNumber,
    setting: CareSetting,
) -> Result<Outcome, FhirError> {
    let reader = Reader {
        caller,
        kind: AccessKind::Search,
        care_setting: setting,
        now_ms: state.clock.now_ms(),
        observer: state.base_url.clone(),
    };
    let native = crate::search::parse(
        ResourceType::Flag,
        &format!(
            "patient:identifier={}&_include=Flag:author&_count=500",
            nhs.as_str()
        ),
    )?;
    let history = crate::search::audit::parse(&format!("patient:identifier={}", nhs.as_str()))?;
    let child = nhs.as_str().to_string();
    let asked = history.clone();
    let (results, plans, plan, now) = state
        .auditor
        .disclosing(&state.pool, reader, move |conn, ctx| {
            let found = plan_search::search(conn, ctx, &native)?;
            let plans = plan_search::supporting_plans(conn, ctx, &child)?;
            let plan = access_history::clinician_history(conn, ctx, &asked)?;
            let now = ctx.now_ms();
            Ok(found.map(|found| (found, plans, plan, now)))
        })
        .await?;
    let today = uk_date(now);
    let (flags, las) = map::matches_and_includes(results.entries);
    let mut flagged: Vec<(Value, Value)> = flags
        .iter()
        .filter_map(|flag| {
            let plan = plans.iter().find(|p| p.get("id") == flag.get("id"))?;
            let la = map::managing_la(plan, &las).cloned().unwrap_or_default();
            Some((plan.clone(), la))
        })
        .collect();
    map::newest_first(&mut flagged, |(plan, _)| plan);
    let mut outcome = Outcome {
        nhs_number: spaced(nhs.as_str()),
        looked_up: uk_time(now),
        unscheduled: setting == CareSetting::Unscheduled,
        ..Outcome::default()
    };
    for (plan, la) in &flagged {
        let (card, phase) = card(plan, la, today);
        match phase {
            Phase::InForce | Phase::NotYetStarted => outcome.current.push(card),
            Phase::Ended | Phase::Finished | Phase::Cancelled => outcome.ended.push(card),
        }
    }
    if !outcome.found() {
        // Nothing shown, nothing recorded, no history read.
        return Ok(outcome);
    }
    let (events, _) = crate::db::run(&state.pool, move |conn| {
        access_history::page(conn, &plan, &history)
    })
    .await?;
    outcome.views = events.iter().map(view).collect();
    outcome.pattern = events.first().and_then(pattern);
    Ok(outcome)
}

/// A plan's card, and where it stands today.
fn card(plan: &Value, la: &Value, today: chrono::NaiveDate) -> (Card, Phase) {
    let phase = map::phase(plan, today);
    let code = map::str_at(plan, "/type/0/coding/0/code");
    let (kind, description) = match PlanType::from_code(code) {
        Some(PlanType::ChildProtectionPlan) => (
            "Child protection plan",
            "The child is subject to a child protection plan.",
        ),
        Some(PlanType::LookedAfterChild) => (
            "Looked after child",
            "The child is looked after by the local authority.",
        ),
        Some(PlanType::UnbornChildProtectionPlan) => (
            "Unborn child protection plan",
            "An unborn child is subject to a child protection plan.",
        ),
        None => ("Plan", ""),
    };
    let phones = map::phones(la);
    let phone = |usage: &str| {
        phones
            .iter()
            .find(|p| p["use"] == usage)
            .and_then(|p| p["value"].as_str())
            .map(phone)
    };
    let date = |pointer: &str| {
        plan.pointer(pointer)
            .and_then(Value::as_str)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map(|d| d.format("%-d %B %Y").to_string())
    };
    let la_ods = match map::str_at(la, "/identifier/0/value") {
        "" => map::str_at(plan, "/managingOrganization/identifier/value"),
        ods => ods,
    };
    (
        Card {
            kind: kind.to_string(),
            description: description.to_string(),
            start: date("/period/start").unwrap_or_default(),
            end: date("/period/end"),
            not_yet_started: phase == Phase::NotYetStarted,
            la_name: map::str_at(la, "/name").to_string(),
            la_ods: la_ods.to_string(),
            office_hours: phone("work"),
            emergency_duty: phone("mobile"),
        },
        phase,
    )
}

/// A phone number as stored, and the `tel:` target its digits make.
fn phone(value: &str) -> Phone {
    Phone {
        shown: value.to_string(),
        tel: value
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect(),
    }
}

/// An AuditEvent of the child's history as a row of Previous views.
fn view(event: &Value) -> View {
    let text = |pointer: &str| map::str_at(event, pointer).to_string();
    let recorded = event
        .get("recorded")
        .and_then(Value::as_str)
        .and_then(|r| chrono::DateTime::parse_from_rfc3339(r).ok())
        .map(|r| uk_time(r.timestamp_millis()))
        .unwrap_or_default();
    let org_name = text("/agent/1/who/display");
    let org_code = text("/agent/1/who/identifier/value");
    View {
        when: recorded,
        viewer: text("/agent/0/who/display"),
        job_role: text("/agent/0/role/0/text"),
        organisation: match (org_name.is_empty(), org_code.is_empty()) {
            (false, false) => format!("{org_name} ({org_code})"),
            (true, _) => org_code,
            (false, true) => org_name,
        },
    }
}

/// The attendance summary an AuditEvent carries, when it is a pattern.
fn pattern(event: &Value) -> Option<Pattern> {
    let parts = event
        .get("extension")?
        .as_array()?
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(ATTENDANCE_EXTENSION))?
        .get("extension")?
        .as_array()?;
    let part = |url: &str| {
        parts
            .iter()
            .find(|p| p.get("url").and_then(Value::as_str) == Some(url))
    };
    let count = |url: &str| part(url).and_then(|p| p.get("valueUnsignedInt")?.as_u64());
    let is_pattern = part("pattern").and_then(|p| p.get("valueBoolean")?.as_bool())?;
    is_pattern.then_some(Pattern {
        attendances: count("attendances")?,
        settings: count("settings")?,
        window_days: count("windowDays")?,
    })
}

/// `944 930 6753`.
fn spaced(nhs: &str) -> String {
    let (a, rest) = nhs.split_at_checked(3).unwrap_or((nhs, ""));
    let (b, c) = rest.split_at_checked(3).unwrap_or((rest, ""));
    [a, b, c]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An instant as UK time: `9 September 2025 at 14:05`.
pub fn uk_time(ms: i64) -> String {
    to_datetime(ms)
        .with_timezone(&London)
        .format("%-d %B %Y at %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_and_times_are_written_the_uk_way() {
        // 14:05 BST on 9 September 2025 is 13:05 UTC.
        assert_eq!(uk_time(1_757_423_100_000), "9 September 2025 at 14:05");
        assert_eq!(spaced("9449306753"), "944 930 6753");
    }

    #[test]
    fn a_phone_links_by_its_digits() {
        let p = phone("020 7000 0999\"><script>");
        assert_eq!(p.tel, "02070000999");
        assert_eq!(p.shown, "020 7000 0999\"><script>");
    }

    #[test]
    fn a_card_names_its_plan_la_dates_and_numbers() {
        let plan = json!({
            "status": "active",
            "type": [{"coding": [{"code": "764841000000100"}]}],
            "period": {"start": "2025-09-09", "end": "2026-03-01"},
            "managingOrganization": {"identifier": {"value": "E09000030"}}
        });
        let la = json!({
            "name": "Tower Hamlets",
            "identifier": [{"value": "E09000030"}],
            "telecom": [
                {"system": "phone", "value": "020 7364 5000", "use": "work"},
                {"system": "phone", "value": "020 7364 4079", "use": "mobile"}
            ]
        });
        let today = chrono::NaiveDate::from_ymd_opt(2025, 12, 1).unwrap_or_default();
        let (card, phase) = card(&plan, &la, today);
        assert_eq!(phase, Phase::InForce);
        assert_eq!(card.kind, "Looked after child");
        assert_eq!(card.start, "9 September 2025");
        assert_eq!(card.end.as_deref(), Some("1 March 2026"));
        assert_eq!(card.la_ods, "E09000030");
        assert_eq!(
            card.office_hours.map(|p| p.tel).as_deref(),
            Some("02073645000")
        );
        assert_eq!(
            card.emergency_duty.map(|p| p.tel).as_deref(),
            Some("02073644079")
        );
    }
}
