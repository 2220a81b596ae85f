//! Organization: a local authority, with its ODS code and two phone numbers (SPEC §3).

use serde_json::Value;

use super::index::{Index, IndexEntries, TokenEntry};
use super::types::ODS_SYSTEM;
use crate::error::Issue;

/// What the server needs of an LA: its code, its name and its phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAuthority {
    pub ods: String,
    pub name: String,
    pub office_hours_phone: String,
    pub emergency_duty_phone: String,
}

impl LocalAuthority {
    /// Reads an Organization that passed its profile, and applies the business rules the
    /// profile cannot state: one office-hours (`work`) and one emergency-duty (`mobile`) phone.
    pub fn from_resource(org: &Value) -> Result<LocalAuthority, Vec<Issue>> {
        let mut issues = Vec::new();
        let ods = org
            .pointer("/identifier/0/value")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_uppercase());
        if ods.is_none() {
            issues.push(Issue::missing(
                "Organization.identifier[0].value",
                "the LA's ODS code is required",
            ));
        }
        if org.pointer("/identifier/0/system").and_then(Value::as_str) != Some(ODS_SYSTEM) {
            issues.push(Issue::invalid(
                "Organization.identifier[0].system",
                format!("the identifier system must be {ODS_SYSTEM}"),
            ));
        }
        let name = org.get("name").and_then(Value::as_str).map(str::to_string);
        if name.is_none() {
            issues.push(Issue::missing("Organization.name", "name is required"));
        }
        // (index in telecom, number) of each phone with this use.
        let phone = |wanted: &str| -> Vec<(usize, String)> {
            org.get("telecom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .filter(|(_, t)| t.get("system").and_then(Value::as_str) == Some("phone"))
                .filter(|(_, t)| t.get("use").and_then(Value::as_str) == Some(wanted))
                .filter_map(|(i, t)| {
                    t.get("value")
                        .and_then(Value::as_str)
                        .map(|v| (i, v.to_string()))
                })
                .collect()
        };
        let (work, mobile) = (phone("work"), phone("mobile"));
        let phones = [
            (&work, "office-hours", "work"),
            (&mobile, "emergency duty team", "mobile"),
        ];
        for (found, label, use_) in phones {
            if found.is_empty() {
                issues.push(Issue::missing(
                    "Organization.telecom",
                    format!("an {label} phone ({{system: phone, use: {use_}}}) is required"),
                ));
            }
        }
        for (found, label, use_) in phones {
            for (index, _) in found.iter().skip(1) {
                issues.push(Issue::not_allowed(
                    format!("Organization.telecom[{index}]"),
                    format!("an LA has exactly one {label} phone (use {use_})"),
                ));
            }
        }
        match (ods, name, work.first(), mobile.first()) {
            (Some(ods), Some(name), Some((_, w)), Some((_, m))) if issues.is_empty() => {
                Ok(LocalAuthority {
                    ods,
                    name,
                    office_hours_phone: w.clone(),
                    emergency_duty_phone: m.clone(),
                })
            }
            _ => Err(issues),
        }
    }

    pub fn index_entries(&self) -> IndexEntries {
        IndexEntries {
            tokens: vec![
                TokenEntry::new(Index::Identifier, ODS_SYSTEM, &self.ods),
                // `name` is a string parameter: matched case-insensitively from the start.
                TokenEntry::new(Index::Name, "", &self.name.to_lowercase()),
            ],
            dates: vec![],
        }
    }
}

/// The ODS code in an identifier-only reference such as `managingOrganization`.
pub fn referenced_ods(reference: Option<&Value>) -> Option<String> {
    reference
        .and_then(|r| r.pointer("/identifier/value"))
        .and_then(Value::as_str)
        .map(|s| s.trim().to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn la() -> Value {
        json!({
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": "e09000030"}],
            "name": "Tower Hamlets",
            "telecom": [
                {"system": "phone", "value": "020 7364 5000", "use": "work"},
                {"system": "phone", "value": "020 7364 4079", "use": "mobile"}
            ]
        })
    }

    #[test]
    fn an_la_with_both_phones_is_accepted_and_its_code_normalised() {
        let la = LocalAuthority::from_resource(&la()).unwrap();
        assert_eq!(la.ods, "E09000030");
        assert_eq!(la.emergency_duty_phone, "020 7364 4079");
    }

    #[test]
    fn a_second_phone_of_the_same_use_is_not_allowed() {
        let mut org = la();
        org["telecom"][1]["use"] = json!("work");
        let issues = LocalAuthority::from_resource(&org).unwrap_err();
        let found: Vec<_> = issues
            .iter()
            .map(|i| (i.spine.code(), i.expression.clone().unwrap()))
            .collect();
        assert_eq!(
            found,
            [
                ("MISSING_VALUE", "Organization.telecom".to_string()),
                (
                    "ADDITIONAL_PROPERTIES",
                    "Organization.telecom[1]".to_string()
                ),
            ]
        );
    }

    #[test]
    fn an_la_without_its_emergency_duty_phone_is_rejected() {
        let mut org = la();
        org["telecom"].as_array_mut().unwrap().pop();
        let issues = LocalAuthority::from_resource(&org).unwrap_err();
        assert_eq!(issues.len(), 1);
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("Organization.telecom")
        );
    }
}
