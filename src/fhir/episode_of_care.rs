//! EpisodeOfCare: a child protection plan, looked-after status or unborn child protection plan,
//! held against an NHS number (SPEC §1, §3).

use std::str::FromStr;

use chrono::NaiveDate;
use serde_json::Value;

use super::index::{DateEntry, Index, IndexEntries, TokenEntry};
use super::nhs_number::{NhsNumber, NhsNumberError};
use super::organization::referenced_ods;
use super::period::DayPeriod;
use super::types::{parse_day, NHS_NUMBER_SYSTEM, ODS_SYSTEM, SNOMED_SYSTEM};
use crate::error::Issue;

pub const PLAN_VALUE_SET: &str = "https://fhir.nhs.uk/England/ValueSet/England-ChildProtectionPlan";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanType {
    ChildProtectionPlan,
    LookedAfterChild,
    UnbornChildProtectionPlan,
}

impl PlanType {
    pub const ALL: [PlanType; 3] = [
        PlanType::ChildProtectionPlan,
        PlanType::LookedAfterChild,
        PlanType::UnbornChildProtectionPlan,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::ChildProtectionPlan => "342191000000101",
            Self::LookedAfterChild => "764841000000100",
            Self::UnbornChildProtectionPlan => "818901000000100",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Self::ChildProtectionPlan => "Subject to child protection plan",
            Self::LookedAfterChild => "Looked after child",
            Self::UnbornChildProtectionPlan => "Unborn child subject to child protection plan",
        }
    }

    pub fn from_code(code: &str) -> Option<PlanType> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    Active,
    Finished,
    Cancelled,
    EnteredInError,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
            Self::EnteredInError => "entered-in-error",
        }
    }
}

impl FromStr for PlanStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "active" => Ok(Self::Active),
            "finished" => Ok(Self::Finished),
            "cancelled" => Ok(Self::Cancelled),
            "entered-in-error" => Ok(Self::EnteredInError),
            _ => Err(()),
        }
    }
}

/// A plan as the server understands it, read from a validated EpisodeOfCare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub identifier_system: String,
    pub identifier_value: String,
    pub status: PlanStatus,
    pub plan_type: PlanType,
    pub patient: NhsNumber,
    pub managing_ods: String,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn required(r: &Value, issues: &mut Vec<Issue>, pointer: &str, expr: &str) -> Option<String> {
    let v = str_at(r, pointer).map(str::to_string);
    if v.is_none() {
        issues.push(Issue::missing(expr, format!("{expr} is required")));
    }
    v
}

/// The plan's status, or an issue at `EpisodeOfCare.status`.
fn checked_status(issues: &mut Vec<Issue>, s: &str) -> Option<PlanStatus> {
    let parsed = s.parse::<PlanStatus>().ok();
    if parsed.is_none() {
        issues.push(Issue::invalid(
            "EpisodeOfCare.status",
            format!("unknown status {s:?}"),
        ));
    }
    parsed
}

/// The identifier systems a plan's references and codes must use.
fn check_systems(r: &Value, issues: &mut Vec<Issue>) {
    for (pointer, expected, expression, why) in [
        (
            "/patient/identifier/system",
            NHS_NUMBER_SYSTEM,
            "EpisodeOfCare.patient.identifier.system",
            format!("the patient is identified by NHS number ({NHS_NUMBER_SYSTEM})"),
        ),
        (
            "/managingOrganization/identifier/system",
            ODS_SYSTEM,
            "EpisodeOfCare.managingOrganization.identifier.system",
            format!("the managing LA is identified by ODS code ({ODS_SYSTEM})"),
        ),
        (
            "/type/0/coding/0/system",
            SNOMED_SYSTEM,
            "EpisodeOfCare.type[0].coding[0].system",
            format!("plan types are coded in {SNOMED_SYSTEM}"),
        ),
    ] {
        if str_at(r, pointer).is_some_and(|s| s != expected) {
            issues.push(Issue::invalid(expression, why));
        }
    }
}

/// The NHS number the plan is held against, or an issue at its value.
fn checked_patient(issues: &mut Vec<Issue>, n: &str) -> Option<NhsNumber> {
    match NhsNumber::parse(n) {
        Ok(n) => Some(n),
        Err(e) => {
            let why = match e {
                NhsNumberError::NotTenDigits => "an NHS number is 10 digits",
                NhsNumberError::BadCheckDigit => "the NHS number check digit is wrong",
            };
            issues.push(Issue::invalid(
                "EpisodeOfCare.patient.identifier.value",
                why,
            ));
            None
        }
    }
}

/// The plan type from the ValueSet, with its display as the table gives it.
fn checked_plan_type(r: &Value, issues: &mut Vec<Issue>, code: &str) -> Option<PlanType> {
    let Some(plan_type) = PlanType::from_code(code) else {
        issues.push(Issue::invalid(
            "EpisodeOfCare.type[0].coding[0].code",
            format!("{code:?} is not in {PLAN_VALUE_SET}"),
        ));
        return None;
    };
    if let Some(display) = str_at(r, "/type/0/coding/0/display") {
        if display != plan_type.display() {
            issues.push(Issue::invalid(
                "EpisodeOfCare.type[0].coding[0].display",
                format!(
                    "the display of {} is {:?}",
                    plan_type.code(),
                    plan_type.display()
                ),
            ));
        }
    }
    Some(plan_type)
}

/// The period as whole days, the end not before the start.
fn checked_period(
    r: &Value,
    issues: &mut Vec<Issue>,
    start: Option<String>,
) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let start = whole_day(issues, start, "EpisodeOfCare.period.start");
    let end = whole_day(
        issues,
        str_at(r, "/period/end").map(str::to_string),
        "EpisodeOfCare.period.end",
    );
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            issues.push(Issue::rule(
                "EpisodeOfCare.period.end",
                "the plan cannot end before it starts",
            ));
        }
    }
    (start, end)
}

fn whole_day(issues: &mut Vec<Issue>, value: Option<String>, expr: &str) -> Option<NaiveDate> {
    let s = value?;
    let d = parse_day(&s);
    if d.is_none() {
        issues.push(Issue::invalid(expr, format!("{s:?} is not a whole date")));
    }
    d
}

impl Plan {
    /// Reads an EpisodeOfCare and applies the business rules that follow the profile: NHS number
    /// check digit, plan code and display from the ValueSet, a whole-day start, end not before
    /// start. Every problem is reported, each at its element.
    pub fn from_resource(r: &Value) -> Result<Plan, Vec<Issue>> {
        let mut issues = Vec::new();
        let mut need = |pointer: &str, expr: &str| required(r, &mut issues, pointer, expr);
        let identifier_system = need("/identifier/0/system", "EpisodeOfCare.identifier[0].system");
        let identifier_value = need("/identifier/0/value", "EpisodeOfCare.identifier[0].value");
        let status = need("/status", "EpisodeOfCare.status");
        let code = need(
            "/type/0/coding/0/code",
            "EpisodeOfCare.type[0].coding[0].code",
        );
        let nhs = need(
            "/patient/identifier/value",
            "EpisodeOfCare.patient.identifier.value",
        );
        let start = need("/period/start", "EpisodeOfCare.period.start");
        let ods = referenced_ods(r.get("managingOrganization"));
        if ods.is_none() {
            issues.push(Issue::missing(
                "EpisodeOfCare.managingOrganization.identifier.value",
                "the managing LA's ODS code is required",
            ));
        }

        let status = status.and_then(|s| checked_status(&mut issues, &s));
        check_systems(r, &mut issues);
        let patient = nhs.and_then(|n| checked_patient(&mut issues, &n));
        let plan_type = code.and_then(|c| checked_plan_type(r, &mut issues, &c));
        let (start, end) = checked_period(r, &mut issues, start);
        match (
            identifier_system,
            identifier_value,
            status,
            plan_type,
            patient,
            ods,
            start,
        ) {
            (
                Some(sys),
                Some(val),
                Some(status),
                Some(plan_type),
                Some(patient),
                Some(ods),
                Some(start),
            ) if issues.is_empty() => Ok(Plan {
                identifier_system: sys,
                identifier_value: val,
                status,
                plan_type,
                patient,
                managing_ods: ods,
                start,
                end,
            }),
            _ => Err(issues),
        }
    }

    pub fn start_ms(&self) -> i64 {
        self.period().start_ms
    }

    /// Exclusive end of the plan's last day; `i64::MAX` while open-ended.
    pub fn end_ms(&self) -> i64 {
        self.period().end_ms
    }

    /// The period as whole days (`fhir::period`).
    pub fn period(&self) -> DayPeriod {
        DayPeriod::of(self.start, self.end)
    }

    pub fn index_entries(&self) -> IndexEntries {
        IndexEntries {
            tokens: vec![
                TokenEntry::new(
                    Index::Identifier,
                    &self.identifier_system,
                    &self.identifier_value,
                ),
                TokenEntry::new(Index::Patient, NHS_NUMBER_SYSTEM, self.patient.as_str()),
                TokenEntry::new(
                    Index::Status,
                    "http://hl7.org/fhir/episode-of-care-status",
                    self.status.as_str(),
                ),
                TokenEntry::new(Index::Type, SNOMED_SYSTEM, self.plan_type.code()),
                TokenEntry::new(Index::Organization, ODS_SYSTEM, &self.managing_ods),
            ],
            dates: vec![DateEntry {
                param: Index::Date,
                start_ms: self.start_ms(),
                end_ms: self.end_ms(),
            }],
        }
    }
}

/// The resource as stored: the client's elements, with the server filling the plan-type display
/// so every reader sees the same words.
pub fn normalise(mut resource: Value, plan: &Plan) -> Value {
    if let Some(coding) = resource
        .pointer_mut("/type/0/coding/0")
        .and_then(Value::as_object_mut)
    {
        coding.insert("display".into(), Value::from(plan.plan_type.display()));
    }
    if let Some(ident) = resource
        .pointer_mut("/managingOrganization/identifier")
        .and_then(Value::as_object_mut)
    {
        ident.insert("value".into(), Value::from(plan.managing_ods.clone()));
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn plan_json() -> Value {
        json!({
            "resourceType": "EpisodeOfCare",
            "identifier": [{"system": "https://fhir.e09000030.gov.uk/Id/plan", "value": "P-1"}],
            "status": "active",
            "type": [{"coding": [{"system": SNOMED_SYSTEM, "code": "342191000000101"}]}],
            "patient": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9449306753"}},
            "managingOrganization": {"identifier": {"system": ODS_SYSTEM, "value": "E09000030"}},
            "period": {"start": "2026-01-05"}
        })
    }

    fn expressions(r: &Value) -> Vec<String> {
        Plan::from_resource(r)
            .unwrap_err()
            .into_iter()
            .filter_map(|i| i.expression)
            .collect()
    }

    #[test]
    fn a_valid_plan_is_read() {
        let plan = Plan::from_resource(&plan_json()).unwrap();
        assert_eq!(plan.plan_type, PlanType::ChildProtectionPlan);
        assert_eq!(plan.end_ms(), i64::MAX);
    }

    #[test]
    fn a_bad_check_digit_is_reported_at_the_patient_value() {
        let mut r = plan_json();
        r["patient"]["identifier"]["value"] = json!("9449306754");
        assert_eq!(expressions(&r), ["EpisodeOfCare.patient.identifier.value"]);
    }

    #[test]
    fn an_end_before_start_is_a_rule_violation_at_period_end() {
        let mut r = plan_json();
        r["period"]["end"] = json!("2025-12-31");
        let issues = Plan::from_resource(&r).unwrap_err();
        assert_eq!(issues[0].spine, crate::error::SpineCode::ValidationError);
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("EpisodeOfCare.period.end")
        );
    }

    #[test]
    fn a_wrong_display_and_an_unknown_code_are_both_reported() {
        let mut r = plan_json();
        r["type"][0]["coding"][0]["display"] = json!("Something else");
        assert_eq!(expressions(&r), ["EpisodeOfCare.type[0].coding[0].display"]);
        r["type"][0]["coding"][0]["code"] = json!("123");
        assert_eq!(expressions(&r), ["EpisodeOfCare.type[0].coding[0].code"]);
    }

    #[test]
    fn every_missing_element_is_reported_at_once() {
        let r = json!({"resourceType": "EpisodeOfCare"});
        assert_eq!(expressions(&r).len(), 7);
    }
}
