//! Every FHIR resource a test receives is checked against its profile and against
//! `openapi.yaml`, and for empty arrays or objects.

use super::*;

/// The JSON body of a response; a FHIR resource is checked against its profile (`conform`).
pub async fn body(res: Response) -> Value {
    let url = res.url().to_string();
    let text = res.text().await.expect("a response body");
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"));
    conform(&value, &url);
    value
}

/// `res.fhir().await`: the body of a response, as `body`.
pub trait FhirJson {
    fn fhir(self) -> impl std::future::Future<Output = Value>;
}

impl FhirJson for Response {
    fn fhir(self) -> impl std::future::Future<Output = Value> {
        body(self)
    }
}

fn profiles() -> &'static Profiles {
    static PROFILES: OnceLock<Profiles> = OnceLock::new();
    PROFILES.get_or_init(|| Profiles::load().expect("the profiles compile"))
}

/// The profile (file stem) and FHIRPath root a resource the server returns must conform to;
/// `None` for the CapabilityStatement, which has no profile of ours.
fn output_profile(resource: &Value) -> Option<(&'static str, &'static str)> {
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    match (ty, resource["type"].as_str()) {
        ("Bundle", Some("searchset")) => Some(("Bundle-searchset", "Bundle")),
        ("Bundle", Some("history")) => Some(("Bundle-history", "Bundle")),
        ("Bundle", Some("batch-response" | "transaction-response")) => {
            Some(("Bundle-response", "Bundle"))
        }
        ("Flag", _) => Some(("Flag", "Flag")),
        ("EpisodeOfCare", _) => Some(("EpisodeOfCare", "EpisodeOfCare")),
        ("Organization", _) => Some(("Organization", "Organization")),
        ("OperationOutcome", _) => Some(("OperationOutcome", "OperationOutcome")),
        ("AuditEvent", _) => Some(("AuditEvent", "AuditEvent")),
        ("Subscription", _) => Some(("Subscription", "Subscription")),
        ("CapabilityStatement", _) => None,
        _ => panic!("the server returned a resource with no profile in fhir-profiles/: {resource}"),
    }
}

/// Fails the test unless `resource`, returned by the server for `context`, conforms to its
/// profile in `fhir-profiles/`, and every stored resource in it (itself, or a Bundle's
/// entries) carries the `id` and `meta` SPEC §3 promises.
pub fn conform(resource: &Value, context: &str) {
    no_empty_arrays_or_objects(resource, context, "");
    let in_view = [cpis::views::CPIS_PATH, cpis::views::PATIENT_FLAG_PATH]
        .iter()
        .any(|view| context.contains(view));
    conform_to_contract(resource, context, in_view);
    // A subset (`_summary`, `_elements`) leaves out elements the profiles require, by design:
    // it says so with the SUBSETTED tag, and is checked against the contract only.
    if resource.to_string().contains("\"SUBSETTED\"") {
        return;
    }
    // NHS England's views answer in the guides' shapes, not ours: CI validates them against
    // FHIR itself (`.ci/fhir_resources_check.py`), and `nhs_views` checks them element by element.
    if in_view {
        return;
    }
    let Some((profile, root)) = output_profile(resource) else {
        return;
    };
    let issues = profiles().validate(profile, root, resource);
    assert!(
        issues.is_empty(),
        "{context}: the server's {profile} breaks its profile:\n{}\n{resource}",
        issues
            .iter()
            .map(|i| format!("  {:?} {}: {}", i.expression, i.spine.code(), i.diagnostics))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stored: Vec<&Value> = match profile {
        "Bundle-searchset" | "Bundle-history" => resource["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource"))
            .collect(),
        "Flag" | "EpisodeOfCare" | "Organization" => vec![resource],
        _ => vec![],
    };
    for r in stored
        .into_iter()
        .filter(|r| r["resourceType"] != "OperationOutcome")
    {
        let ty = r["resourceType"].as_str().unwrap_or_default();
        let canonical = Profiles::canonical(output_profile(r).map_or(ty, |(name, _)| name));
        assert!(
            r["id"].is_string()
                && r["meta"]["versionId"].is_string()
                && r["meta"]["lastUpdated"].is_string()
                && r["meta"]["profile"]
                    .as_array()
                    .is_some_and(|p| p.contains(&json!(canonical))),
            "{context}: a stored {ty} without id, meta.versionId, meta.lastUpdated and \
             meta.profile {canonical}: {r}"
        );
    }
}

/// FHIR JSON has no empty arrays or objects (R4 JSON §2.6.2).
fn no_empty_arrays_or_objects(value: &Value, context: &str, path: &str) {
    let empty = match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                no_empty_arrays_or_objects(item, context, &format!("{path}[{i}]"));
            }
            items.is_empty()
        }
        Value::Object(map) => {
            for (name, child) in map {
                no_empty_arrays_or_objects(child, context, &format!("{path}.{name}"));
            }
            map.is_empty()
        }
        _ => false,
    };
    assert!(!empty, "{context}: an empty array or object at {path}");
}

/// The `openapi.yaml` component schema a resource the server returns is published as, so
/// that the contract integrators generate clients from cannot drift from what the server sends.
fn contract_schema(resource: &Value, in_view: bool) -> Option<&'static str> {
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    Some(match (ty, resource["type"].as_str()) {
        ("OperationOutcome", _) => "OperationOutcome",
        ("CapabilityStatement", _) => "CapabilityStatement",
        ("Bundle", _) if in_view => "NhsViewBundle",
        _ if in_view => "NhsViewResource",
        ("Bundle", Some("batch-response" | "transaction-response")) => "UploadResponseBundle",
        ("Bundle", _) => "Bundle",
        ("Flag", _) => "Flag",
        ("EpisodeOfCare", _) => "EpisodeOfCare",
        ("Organization", _) => "Organization",
        ("AuditEvent", _) => "AuditEvent",
        ("Subscription", _) => "Subscription",
        _ => return None,
    })
}

/// Fails the test unless `resource` is valid against its component schema in `openapi.yaml`
/// (read as JSON Schema draft 4, which OpenAPI 3.0's schema objects extend).
fn conform_to_contract(resource: &Value, context: &str, in_view: bool) {
    type Validators =
        std::collections::HashMap<&'static str, std::sync::Arc<jsonschema::Validator>>;
    static CONTRACT: OnceLock<Value> = OnceLock::new();
    static VALIDATORS: OnceLock<std::sync::Mutex<Validators>> = OnceLock::new();
    let Some(schema_name) = contract_schema(resource, in_view) else {
        return;
    };
    let validator = {
        let mut validators = VALIDATORS
            .get_or_init(Default::default)
            .lock()
            .expect("unpoisoned");
        validators
            .entry(schema_name)
            .or_insert_with(|| {
                let components = CONTRACT.get_or_init(|| {
                    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
                    let text = std::fs::read_to_string(path).expect("openapi.yaml is readable");
                    let contract: Value =
                        serde_norway::from_str(&text).expect("openapi.yaml parses");
                    contract["components"].clone()
                });
                let schema = json!({
                    "$ref": format!("#/components/schemas/{schema_name}"),
                    "components": components,
                });
                std::sync::Arc::new(
                    jsonschema::draft4::new(&schema).expect("openapi.yaml's schemas compile"),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(resource)
        .map(|e| format!("  {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{context}: the response breaks openapi.yaml's {schema_name} schema:\n{}\n{resource}",
        errors.join("\n")
    );
}
