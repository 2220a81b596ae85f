//! The CapabilityStatement, built from the same tables the server runs on (search parameters,
//! includes, profiles), so it lists exactly what works.

use serde_json::{json, Value};

use super::params::{includes_for, search_params, Searched};
use crate::fhir::types::PROFILE_BASE;
use crate::fhir::ResourceType;

/// The interactions each type supports.
fn interactions(ty: ResourceType) -> &'static [&'static str] {
    match ty {
        ResourceType::Organization => &[
            "read",
            "vread",
            "history-instance",
            "search-type",
            "create",
            "update",
        ],
        ResourceType::EpisodeOfCare => &[
            "read",
            "vread",
            "history-instance",
            "search-type",
            "create",
            "update",
            "delete",
        ],
        ResourceType::Flag => &["read", "vread", "history-instance", "search-type"],
    }
}

/// What a client must know of each type beyond its interactions.
fn documentation(ty: ResourceType) -> &'static str {
    match ty {
        ResourceType::Organization => "A local authority. Its ODS code (identifier) is fixed once created, because its plans are held against it: a change is 422 FORBIDDEN_UPDATE at Organization.identifier.",
        ResourceType::EpisodeOfCare => "A plan of an LA, held against the child's (or, for an unborn child, the mother's) NHS number.",
        ResourceType::Flag => "The alert derived from a plan; read-only. status is computed for today's date in England (Europe/London, so BST is honoured): active while the plan is active and today lies within its period.",
    }
}

/// A type's `searchParam`s, from the table its parser uses, named as FHIR names them: a
/// reference searched by its target's identifier is the parameter `patient` (type reference),
/// its `:identifier` modifier said in the documentation.
fn search_params_of(searched: Searched) -> Vec<Value> {
    search_params(searched)
        .iter()
        .map(|p| {
            let (name, documentation) = match p.name.split_once(':') {
                Some((name, modifier)) => (
                    name,
                    format!(
                        "Only with the :{modifier} modifier ({}). {}",
                        p.name, p.documentation
                    ),
                ),
                None => (p.name, p.documentation.to_string()),
            };
            json!({"name": name, "type": p.kind.fhir_type(), "documentation": documentation})
        })
        .collect()
}

/// `searchInclude`, only when the type has includes (FHIR JSON has no empty arrays).
fn with_includes(mut resource: Value, includes: &[&str]) -> Value {
    if let (Some(obj), false) = (resource.as_object_mut(), includes.is_empty()) {
        obj.insert("searchInclude".into(), json!(includes));
    }
    resource
}

/// `rest.security`: bearer tokens, and whether browsers on other origins may call.
pub fn security(cors: bool) -> Value {
    json!({
        "cors": cors,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}]}],
        "description": "Bearer JWT with role (social-care | health-care | operations) and org claims"
    })
}

fn resource(ty: ResourceType) -> Value {
    let params = search_params_of(Searched::Stored(ty));
    let writable = matches!(ty, ResourceType::Organization | ResourceType::EpisodeOfCare);
    let r = json!({
        "type": ty.as_str(),
        "profile": ty.profile(),
        "documentation": documentation(ty),
        "interaction": interactions(ty).iter().map(|i| json!({"code": i})).collect::<Vec<_>>(),
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": false,
        "conditionalCreate": ty == ResourceType::EpisodeOfCare,
        "conditionalRead": "not-supported",
        "conditionalUpdate": ty == ResourceType::EpisodeOfCare,
        "conditionalDelete": if ty == ResourceType::EpisodeOfCare { "single" } else { "not-supported" },
        "searchParam": params,
    });
    let includes: Vec<&str> = includes_for(ty).iter().map(|(v, _)| *v).collect();
    let mut r = with_includes(r, &includes);
    if writable {
        if let Some(obj) = r.as_object_mut() {
            obj.insert(
                "operation".into(),
                json!([{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}]),
            );
        }
    }
    r
}

/// AuditEvent: written by the server alone; searched as the access history.
fn audit_event() -> Value {
    let params = search_params_of(Searched::AuditEvent);
    json!({
        "type": "AuditEvent",
        "profile": format!("{PROFILE_BASE}CPIS-AuditEvent"),
        "documentation": "The access history: health-care sees the 25 most recent unscheduled accesses of one child (and the search is itself recorded); an LA its own children's; operations every access. Immutable: writes are 405.",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": params,
    })
}

/// Subscription: an LA's rest-hook for notifications of unscheduled accesses.
fn subscription() -> Value {
    let interactions: Vec<Value> = ["read", "search-type", "create", "update", "delete"]
        .iter()
        .map(|i| json!({"code": i}))
        .collect();
    json!({
        "type": "Subscription",
        "profile": format!("{PROFILE_BASE}CPIS-Subscription"),
        "documentation": "criteria AuditEvent? only; channel rest-hook with payload application/fhir+json. Each notification carries X-CPIS-Notification-Id.",
        "interaction": interactions,
        "versioning": "versioned-update",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": search_params_of(Searched::Subscription),
    })
}

/// Bundle: the LAs' upload reports (each batch's batch-response), searched by type.
fn upload_report() -> Value {
    json!({
        "type": "Bundle",
        "profile": format!("{PROFILE_BASE}CPIS-Bundle-response"),
        "documentation": "Upload reports: each batch upload's batch-response, with meta extensions counting accepted and rejected entries. An LA sees its own; operations all.",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": search_params_of(Searched::Bundle),
    })
}

pub fn capability_statement(base_url: &str, cors: bool) -> Value {
    let types = [
        ResourceType::Organization,
        ResourceType::EpisodeOfCare,
        ResourceType::Flag,
    ];
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "publisher": "CP-IS open-source project",
        "kind": "instance",
        "software": {"name": "cpis", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Child Protection - Information Sharing FHIR server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Search parameters are strict: unknown parameters are 400, unless Prefer: handling=lenient (then ignored and reported in an OperationOutcome entry). Every search also takes _count (default 50, max 500) and _offset (paging), _sort (_lastUpdated, and date where the type has it; -key descending), _summary, _elements, _total and _pretty, and POST [type]/_search with a form body. A parameter searched by a modifier is named as FHIR names it; its documentation says the modifier. HEAD is served wherever GET is.",
            "security": security(cors),
            "interaction": [
                {"code": "transaction", "documentation": "POST [base] a transaction Bundle of EpisodeOfCare entries (POST, conditional PUT, conditional DELETE): all or nothing"},
                {"code": "batch", "documentation": "POST [base] a batch Bundle of the same entries: each on its own; the batch-response is kept as the LA's upload report"},
            ],
            "resource": types
                .iter()
                .map(|t| resource(*t))
                .chain([audit_event(), subscription(), upload_report()])
                .collect::<Vec<_>>(),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_read_only_and_list_their_include() {
        let cs = capability_statement("http://x/FHIR/R4", false);
        let flag = &cs["rest"][0]["resource"][2];
        assert_eq!(flag["type"], "Flag");
        assert_eq!(flag["searchInclude"][0], "Flag:author");
        assert!(!flag["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "create"));
    }
}
