//! Resource types, systems, meta stamping and time helpers shared by every resource.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat};
use serde_json::{json, Value};

pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
/// Canonical base of this service's profiles (`fhir-profiles/`).
pub const PROFILE_BASE: &str = "https://fhir.cpis.example.org/StructureDefinition/";

/// The resource types this server stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Organization,
    EpisodeOfCare,
    Flag,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Organization => "Organization",
            Self::EpisodeOfCare => "EpisodeOfCare",
            Self::Flag => "Flag",
        }
    }

    /// The canonical URL of this type's profile, as put in `meta.profile`.
    pub fn profile(self) -> String {
        format!("{PROFILE_BASE}CPIS-{}", self.as_str())
    }
}

impl FromStr for ResourceType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "Organization" => Ok(Self::Organization),
            "EpisodeOfCare" => Ok(Self::EpisodeOfCare),
            "Flag" => Ok(Self::Flag),
            _ => Err(()),
        }
    }
}

/// Sets the server-owned elements: `id` and `meta` (versionId, lastUpdated, profile). `text` is
/// dropped: the server keeps no narrative (data minimisation).
pub fn stamp(resource: &mut Value, ty: ResourceType, id: &str, version: i64, last_updated_ms: i64) {
    if let Some(obj) = resource.as_object_mut() {
        obj.remove("text");
        obj.insert("id".into(), json!(id));
        obj.insert(
            "meta".into(),
            json!({
                "versionId": version.to_string(),
                "lastUpdated": instant(last_updated_ms),
                "profile": [ty.profile()],
            }),
        );
    }
}

/// A FHIR `instant` (UTC, milliseconds) from epoch milliseconds.
pub fn instant(ms: i64) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

use crate::clock::{day_start_ms, to_datetime};

/// Midnight UTC at the end of `date` (exclusive), in epoch milliseconds.
pub fn day_end_ms(date: NaiveDate) -> i64 {
    date.succ_opt().map(day_start_ms).unwrap_or(i64::MAX)
}

/// Parses a FHIR `date` or `dateTime` that names at least a whole day, to that day.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    if s.len() == 10 {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
    } else {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| dt.date_naive())
    }
}

/// An absolute reference to a resource's logical identifier, e.g. the NHS number of a child.
pub fn identifier_reference(system: &str, value: &str) -> Value {
    json!({"identifier": {"system": system, "value": value}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_sets_meta_and_drops_narrative() {
        let mut v =
            json!({"resourceType": "Flag", "text": {"div": "x"}, "meta": {"versionId": "9"}});
        stamp(&mut v, ResourceType::Flag, "abc", 2, 0);
        assert_eq!(v["id"], "abc");
        assert_eq!(v["meta"]["versionId"], "2");
        assert_eq!(v["meta"]["lastUpdated"], "1970-01-01T00:00:00.000Z");
        assert!(v.get("text").is_none());
    }

    #[test]
    fn days_parse_from_dates_and_date_times() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        assert_eq!(parse_day("2026-01-05"), Some(d));
        assert_eq!(parse_day("2026-01-05T10:00:00+00:00"), Some(d));
        assert_eq!(parse_day("2026-01"), None);
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(day_end_ms(d) - day_start_ms(d), 86_400_000);
    }
}
