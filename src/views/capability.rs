//! Each view's own CapabilityStatement at `{view base}/metadata` (`NHS-COMPAT.md` §4): what
//! that view serves and nothing else. Its searches' parameters and includes are generated from
//! the parameter table (`search::params::view_params`), which the views' parser also reads,
//! as the native statement is from the native table.

use serde_json::{json, Value};

use super::{view_base, CPIS_PATH, PATIENT_FLAG_PATH};
use crate::search::params::{view_params, ViewParamKind, ViewSearch};
// The views authenticate (and answer browsers) as the native API does.
use crate::search::capability::security;

/// A searched type's `searchParam` (and `searchInclude`, when it has includes) from the table.
fn searched(search: ViewSearch, mut resource: Value) -> Value {
    let params = view_params(search);
    let listed: Vec<Value> = params
        .iter()
        .filter(|p| p.kind != ViewParamKind::Include)
        .map(|p| {
            let mut param = json!({"name": p.name, "type": "token"});
            if let Some(obj) = param.as_object_mut() {
                if let Some(definition) = p.definition {
                    obj.insert("definition".into(), json!(definition));
                }
                if let Some(documentation) = p.documentation {
                    obj.insert("documentation".into(), json!(documentation));
                }
            }
            param
        })
        .collect();
    let includes: Vec<&str> = params
        .iter()
        .filter(|p| p.kind == ViewParamKind::Include)
        .flat_map(|p| p.values.iter().copied())
        .collect();
    if let Some(obj) = resource.as_object_mut() {
        obj.insert("searchParam".into(), json!(listed));
        // FHIR JSON has no empty arrays.
        if !includes.is_empty() {
            obj.insert("searchInclude".into(), json!(includes));
        }
    }
    resource
}

fn statement(id: &str, instantiates: &str, description: &str, url: String, rest: Value) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "id": id,
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "instantiates": [instantiates],
        "software": {"name": "cpis", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": description, "url": url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [rest],
    })
}

/// Design B: CareTeam (read, search), AuditEvent (search), PractitionerRole (included only).
pub fn cpis(native_base: &str, cors: bool) -> Value {
    statement(
        "cpis-nhs-cpis-view",
        "https://fhir.nhs.uk/CapabilityStatement/CPIS-FHIR-API-Producer",
        "Read-only view in the shape of NHS England's CP-IS FHIR API IG v1.0.0",
        view_base(native_base, CPIS_PATH),
        json!({
            "mode": "server",
            "documentation": "health-care tokens only. Headers: IsUnscheduledAccessEvent (true|false; absent = unscheduled; alias IsUnscheduledEvent), TraceID. A search or read that returns a plan is an audited access.",
            "security": security(cors),
            "resource": [
                searched(ViewSearch::CareTeam, json!(
                    {"type": "CareTeam", "profile": "http://hl7.org/fhir/StructureDefinition/CareTeam",
                     "interaction": [{"code": "read"}, {"code": "search-type"}]})),
                searched(ViewSearch::AuditEvent, json!(
                    {"type": "AuditEvent", "profile": "http://hl7.org/fhir/StructureDefinition/AuditEvent",
                     "interaction": [{"code": "search-type"}]})),
                {"type": "PractitionerRole", "profile": "https://fhir.hl7.org.uk/StructureDefinition/UKCore-PractitionerRole",
                 "documentation": "Returned only as an _include of AuditEvent."}
            ]
        }),
    )
}

/// Design C: Flag (read, search; PatientFlag its alias), CarePlan and CareTeam (read).
pub fn patient_flag(native_base: &str, cors: bool) -> Value {
    statement(
        "cpis-nhs-patient-flag-view",
        "https://fhir.nhs.uk/England/CapabilityStatement/England-PatientFlag-Server-Requirements",
        "Read-only CP-IS view in the shape of NHS England's Patient Flag IG (beta)",
        view_base(native_base, PATIENT_FLAG_PATH),
        json!({
            "mode": "server",
            "documentation": "PatientFlag is an alias of Flag (search and read). health-care tokens only. Optional header IsUnscheduledAccessEvent (absent = unscheduled). Only CP-IS flags are held.",
            "security": security(cors),
            "resource": [
                searched(ViewSearch::Flag, json!(
                    {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination",
                                    "extension": [{"url": "required", "valueString": "patient"}, {"url": "optional", "valueString": "code"}]}],
                     "type": "Flag", "profile": "https://fhir.nhs.uk/England/StructureDefinition/England-Flag-PatientFlag",
                     "interaction": [{"code": "read"}, {"code": "search-type", "documentation": "With code: CarePlan and CareTeam included."}]})),
                {"type": "CarePlan", "profile": "https://fhir.nhs.uk/England/StructureDefinition/England-CarePlan-Flag", "interaction": [{"code": "read"}]},
                {"type": "CareTeam", "profile": "https://fhir.nhs.uk/England/StructureDefinition/England-CareTeam-Flag", "interaction": [{"code": "read"}]}
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::query;

    /// The statement's entry for `ty`.
    fn resource<'a>(statement: &'a Value, ty: &str) -> &'a Value {
        statement["rest"][0]["resource"]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["type"] == ty))
            .unwrap_or(&Value::Null)
    }

    /// Each view's CapabilityStatement lists, for each search, exactly its table's parameters
    /// (name, type, definition, documentation) and includes; and the view's parser takes each
    /// name listed, and no other.
    #[test]
    fn each_views_statement_is_its_parameter_table() {
        let cpis = cpis("http://x/FHIR/R4", false);
        let flags = patient_flag("http://x/FHIR/R4", false);
        for (statement, ty, search) in [
            (&cpis, "CareTeam", ViewSearch::CareTeam),
            (&cpis, "AuditEvent", ViewSearch::AuditEvent),
            (&flags, "Flag", ViewSearch::Flag),
        ] {
            let listed = resource(statement, ty);
            let table = view_params(search);
            let params: Vec<_> = table
                .iter()
                .filter(|p| p.kind != ViewParamKind::Include)
                .collect();
            let shown = listed["searchParam"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(shown.len(), params.len(), "{ty}: {shown:?}");
            for (shown, param) in shown.iter().zip(&params) {
                assert_eq!(shown["name"], param.name, "{ty}");
                assert_eq!(shown["type"], "token", "{ty}");
                assert_eq!(shown["definition"].as_str(), param.definition, "{ty}");
                assert_eq!(shown["documentation"].as_str(), param.documentation, "{ty}");
            }
            let includes: Vec<&str> = table
                .iter()
                .filter(|p| p.kind == ViewParamKind::Include)
                .flat_map(|p| p.values.iter().copied())
                .collect();
            let shown_includes: Vec<&str> = listed["searchInclude"]
                .as_array()
                .map(|all| all.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert_eq!(shown_includes, includes, "{ty}");
            // The NHS number under the listed name, and each other listed parameter with it.
            let child = "patient=9449306753";
            assert!(query::parse(child, search).is_ok(), "{ty}");
            for param in params.iter().filter(|p| p.kind == ViewParamKind::Token) {
                let with = format!("{child}&{}=x", param.name);
                assert!(query::parse(&with, search).is_ok(), "{ty}: {with}");
            }
            let unlisted = format!("{child}&status=active");
            assert!(query::parse(&unlisted, search).is_err(), "{ty}: {unlisted}");
        }
    }
}
