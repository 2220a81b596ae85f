//! Each view's own CapabilityStatement at `{view base}/metadata` (`NHS-COMPAT.md` §4): what
//! that view serves and nothing else. The native statement is unchanged.

use serde_json::{json, Value};

use super::cpis::AUDIT_EVENT_INCLUDES;
use super::{view_base, CPIS_PATH, PATIENT_FLAG_PATH};
// The views authenticate (and answer browsers) as the native API does.
use crate::search::capability::security;

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
                {"type": "CareTeam", "profile": "http://hl7.org/fhir/StructureDefinition/CareTeam",
                 "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [{"name": "patient", "type": "token", "documentation": "NHS number: https://fhir.nhs.uk/Id/nhs-number|N or N; also written patient:identifier. Required; one value."}]},
                {"type": "AuditEvent", "profile": "http://hl7.org/fhir/StructureDefinition/AuditEvent",
                 "interaction": [{"code": "search-type"}],
                 "searchInclude": AUDIT_EVENT_INCLUDES,
                 "searchParam": [{"name": "patient", "type": "token", "documentation": "As CareTeam. Returns the 25 most recent unscheduled accesses; PractitionerRole is always included."}]},
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
                {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination",
                                "extension": [{"url": "required", "valueString": "patient"}, {"url": "optional", "valueString": "code"}]}],
                 "type": "Flag", "profile": "https://fhir.nhs.uk/England/StructureDefinition/England-Flag-PatientFlag",
                 "interaction": [{"code": "read"}, {"code": "search-type", "documentation": "With code: CarePlan and CareTeam included."}],
                 "searchInclude": ["Flag:detail", "CarePlan:care-team"],
                 "searchParam": [
                     {"name": "patient", "type": "token", "documentation": "N, https://fhir.nhs.uk/Id/nhs-number|N or Patient/N. Required; one value."},
                     {"name": "code", "definition": "https://fhir.nhs.uk/England/SearchParameter/England-FlagCode", "type": "token"},
                     {"name": "category", "definition": "https://fhir.nhs.uk/England/SearchParameter/England-FlagCategory", "type": "token"}]},
                {"type": "CarePlan", "profile": "https://fhir.nhs.uk/England/StructureDefinition/England-CarePlan-Flag", "interaction": [{"code": "read"}]},
                {"type": "CareTeam", "profile": "https://fhir.nhs.uk/England/StructureDefinition/England-CareTeam-Flag", "interaction": [{"code": "read"}]}
            ]
        }),
    )
}
