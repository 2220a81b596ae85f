//! Validation against the JSON Schema profiles bundled in `fhir-profiles/`: compiled once at
//! start (`Profiles::load`), then each error becomes an `Issue` with a FHIRPath `expression`
//! (`/type/0/coding/0/code` → `EpisodeOfCare.type[0].coding[0].code`).

use std::collections::HashMap;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

use crate::error::Issue;
use crate::fhir::types::PROFILE_BASE;

/// The profiles, by file stem. Embedded so the binary validates the same way wherever it runs.
const PROFILE_FILES: &[(&str, &str)] = &[
    (
        "Organization",
        include_str!("../fhir-profiles/Organization.schema.json"),
    ),
    (
        "EpisodeOfCare",
        include_str!("../fhir-profiles/EpisodeOfCare.schema.json"),
    ),
    (
        "Subscription",
        include_str!("../fhir-profiles/Subscription.schema.json"),
    ),
    (
        "Bundle-response",
        include_str!("../fhir-profiles/Bundle-response.schema.json"),
    ),
    (
        "Bundle-transaction",
        include_str!("../fhir-profiles/Bundle-transaction.schema.json"),
    ),
    ("Flag", include_str!("../fhir-profiles/Flag.schema.json")),
    (
        "AuditEvent",
        include_str!("../fhir-profiles/AuditEvent.schema.json"),
    ),
    (
        "OperationOutcome",
        include_str!("../fhir-profiles/OperationOutcome.schema.json"),
    ),
    (
        "Bundle-searchset",
        include_str!("../fhir-profiles/Bundle-searchset.schema.json"),
    ),
    (
        "Bundle-history",
        include_str!("../fhir-profiles/Bundle-history.schema.json"),
    ),
];
const DATATYPES: &str = include_str!("../fhir-profiles/datatypes.schema.json");

/// Every profile, compiled.
pub struct Profiles {
    validators: HashMap<&'static str, Validator>,
}

impl Profiles {
    /// Parses and compiles every profile. Cross-file `$ref`s resolve through one registry of all
    /// the files by their `$id`; nothing is fetched from the network.
    pub fn load() -> Result<Profiles, String> {
        let parse = |name: &str, text: &str| -> Result<Value, String> {
            serde_json::from_str(text).map_err(|e| format!("profile {name} is not JSON: {e}"))
        };
        let mut documents = vec![("datatypes", parse("datatypes", DATATYPES)?)];
        for (name, text) in PROFILE_FILES {
            documents.push((name, parse(name, text)?));
        }
        let mut registry = Registry::new();
        for (name, doc) in &documents {
            let id = doc
                .get("$id")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("profile {name} has no $id"))?;
            registry = registry
                .add(id, doc)
                .map_err(|e| format!("profile {name}: {e}"))?;
        }
        let registry = registry
            .prepare()
            .map_err(|e| format!("profiles do not resolve: {e}"))?;
        let options = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&registry);
        let mut validators = HashMap::new();
        for (name, doc) in documents.iter().skip(1) {
            let validator = options
                .build(doc)
                .map_err(|e| format!("profile {name} does not compile: {e}"))?;
            validators.insert(*name, validator);
        }
        Ok(Profiles { validators })
    }

    /// The canonical URL of a profile.
    pub fn canonical(name: &str) -> String {
        format!("{PROFILE_BASE}CPIS-{name}")
    }

    /// Validates `instance` against profile `name` (a file stem such as `EpisodeOfCare` or
    /// `Bundle-transaction`); `root` starts each FHIRPath (`EpisodeOfCare`, `Bundle`).
    pub fn validate(&self, name: &str, root: &str, instance: &Value) -> Vec<Issue> {
        let Some(validator) = self.validators.get(name) else {
            return vec![Issue::invalid(root, format!("no profile named {name}"))];
        };
        let mut issues: Vec<Issue> = Vec::new();
        for error in validator.iter_errors(instance) {
            let at = fhirpath(root, error.instance_path().as_str());
            match error.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for name in unexpected {
                        issues.push(Issue::not_allowed(
                            child(&at, name),
                            format!("{name} is not allowed here (CP-IS shares only the minimum)"),
                        ));
                    }
                }
                ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    issues.push(Issue::missing(
                        child(&at, name),
                        format!("{name} is required"),
                    ));
                }
                // An array below its minimum lacks a required element; one above its maximum
                // holds elements that are not allowed: name each of them.
                ValidationErrorKind::MinItems { limit } => {
                    issues.push(Issue::missing(
                        at,
                        format!("at least {limit} item(s) required"),
                    ));
                }
                ValidationErrorKind::MaxItems { limit } => {
                    let len = error.instance().as_array().map_or(0, Vec::len);
                    let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
                    for index in limit..len {
                        issues.push(Issue::not_allowed(
                            format!("{at}[{index}]"),
                            format!("at most {limit} item(s) allowed here"),
                        ));
                    }
                }
                ValidationErrorKind::FalseSchema => {
                    issues.push(Issue::not_allowed(at, "this element is not allowed here"));
                }
                _ => issues.push(Issue::invalid(at, describe(&error))),
            }
        }
        issues.dedup();
        let mut controls = Vec::new();
        control_characters(instance, &mut root.to_string(), &mut controls);
        for at in controls {
            if !issues
                .iter()
                .any(|i| i.expression.as_deref() == Some(at.as_str()))
            {
                issues.push(Issue::invalid(
                    at,
                    "a FHIR string may not hold control characters (U+0000 to U+001F) other \
                     than tab, carriage return and line feed",
                ));
            }
        }
        issues
    }

    /// The profile's issues, then the business rules' issues that add something. A rule issue
    /// at or below an element the profile already faulted (`EpisodeOfCare.patient` has the
    /// wrong type, so its `identifier.value` is "missing") would only repeat it, and so would
    /// one above it (the office-hours phone is "missing" from `Organization.telecom` because
    /// `telecom[0].system` is `email`). So every problem of a resource is reported at once,
    /// each once.
    pub fn merge(profile: Vec<Issue>, rules: Vec<Issue>) -> Vec<Issue> {
        let covered = |rule: &Issue| {
            profile
                .iter()
                .any(|p| match (&p.expression, &rule.expression) {
                    (Some(p), Some(r)) => within(r, p) || within(p, r),
                    _ => false,
                })
        };
        let extra: Vec<Issue> = rules.into_iter().filter(|r| !covered(r)).collect();
        let mut issues = profile;
        for issue in extra {
            if !issues.contains(&issue) {
                issues.push(issue);
            }
        }
        issues
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.validators.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

/// Whether `c` is a control character a FHIR string may not hold: U+0000 to U+001F but tab,
/// CR and LF (FHIR's `string` is `[ \r\n\t\S]+`).
fn forbidden_control(c: char) -> bool {
    c < '\u{20}' && !matches!(c, '\t' | '\r' | '\n')
}

/// The FHIRPath of every string in `value` (at `path`) that holds a forbidden control
/// character. Every resource written is validated (`Profiles::validate`), so the rule holds
/// for every write: plans, LAs, Subscriptions and each entry of an upload.
fn control_characters(value: &Value, path: &mut String, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s.chars().any(forbidden_control) => found.push(path.clone()),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                control_characters(item, path, found);
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let len = path.len();
                path.push('.');
                path.push_str(name);
                if name.chars().any(forbidden_control) {
                    found.push(path.clone());
                }
                control_characters(field, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The validator's message, without echoing the whole offending value (it may be large, or
/// personal data) beyond a short excerpt. A pattern is not repeated: the validator's
/// compiled form of it is unreadable (`\S` spelt out as a class of Unicode spaces).
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    let message = match error.kind() {
        ValidationErrorKind::Pattern { .. } => format!(
            "{} is not in the format this element requires",
            cut(&error.instance().to_string(), 80)
        ),
        _ => error.to_string(),
    };
    cut(&message, 200)
}

/// `message` cut to at most `max` bytes (at a character boundary), marked with `…`.
fn cut(message: &str, max: usize) -> String {
    if message.len() > max {
        let at = (0..=max)
            .rev()
            .find(|i| message.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", message.get(..at).unwrap_or_default())
    } else {
        message.to_string()
    }
}

/// Whether FHIRPath `path` is `ancestor` or lies below it (`A.b[0].c` is within `A.b`).
fn within(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

fn child(parent: &str, name: &str) -> String {
    format!("{parent}.{name}")
}

/// A JSON pointer (`/entry/3/resource/period/start`) as FHIRPath
/// (`Bundle.entry[3].resource.period.start`).
pub fn fhirpath(root: &str, pointer: &str) -> String {
    let mut out = root.to_string();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profiles() -> Profiles {
        Profiles::load().unwrap()
    }

    fn example(name: &str) -> Value {
        let path = format!(
            "{}/fhir-profiles/examples/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn json_pointers_become_fhirpath() {
        assert_eq!(
            fhirpath("EpisodeOfCare", "/type/0/coding/0/code"),
            "EpisodeOfCare.type[0].coding[0].code"
        );
        assert_eq!(fhirpath("Bundle", ""), "Bundle");
    }

    #[test]
    fn every_bundled_example_is_valid() {
        let p = profiles();
        for (file, profile, root) in [
            ("organization-valid.json", "Organization", "Organization"),
            (
                "episode-of-care-valid.json",
                "EpisodeOfCare",
                "EpisodeOfCare",
            ),
            ("subscription-valid.json", "Subscription", "Subscription"),
            (
                "bundle-transaction-valid.json",
                "Bundle-transaction",
                "Bundle",
            ),
        ] {
            assert_eq!(p.validate(profile, root, &example(file)), vec![], "{file}");
        }
    }

    #[test]
    fn a_missing_start_and_a_forbidden_reason_are_both_reported() {
        let mut plan = example("episode-of-care-valid.json");
        plan["period"].as_object_mut().unwrap().remove("start");
        plan["reason"] = json!([{"text": "neglect"}]);
        let issues = profiles().validate("EpisodeOfCare", "EpisodeOfCare", &plan);
        let found: Vec<_> = issues
            .iter()
            .map(|i| (i.spine.code(), i.expression.clone().unwrap()))
            .collect();
        assert!(
            found.contains(&("MISSING_VALUE", "EpisodeOfCare.period.start".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("ADDITIONAL_PROPERTIES", "EpisodeOfCare.reason".into())),
            "{found:?}"
        );
    }

    #[test]
    fn extra_items_are_each_not_allowed_and_an_empty_list_is_missing() {
        let mut plan = example("episode-of-care-valid.json");
        let coding = plan["type"][0]["coding"][0].clone();
        plan["type"][0]["coding"] = json!([coding.clone(), coding.clone(), coding]);
        plan["identifier"] = json!([]);
        let found: Vec<_> = profiles()
            .validate("EpisodeOfCare", "EpisodeOfCare", &plan)
            .into_iter()
            .map(|i| (i.spine.code(), i.expression.unwrap()))
            .collect();
        assert_eq!(
            found,
            [
                ("MISSING_VALUE", "EpisodeOfCare.identifier".to_string()),
                (
                    "ADDITIONAL_PROPERTIES",
                    "EpisodeOfCare.type[0].coding[1]".to_string()
                ),
                (
                    "ADDITIONAL_PROPERTIES",
                    "EpisodeOfCare.type[0].coding[2]".to_string()
                ),
            ]
        );
    }

    #[test]
    fn rule_issues_at_above_or_below_a_faulted_element_are_not_repeated() {
        let profile = vec![
            Issue::invalid("EpisodeOfCare.patient", "not an object"),
            Issue::invalid(
                "EpisodeOfCare.type[0].coding[0].code",
                "not in the ValueSet",
            ),
        ];
        let rules = vec![
            Issue::missing("EpisodeOfCare.patient.identifier.value", "required"),
            Issue::missing("EpisodeOfCare.type", "a plan type is required"),
            Issue::missing("EpisodeOfCare.patientX", "unrelated"),
            Issue::rule("EpisodeOfCare.period.end", "end before start"),
        ];
        let merged = Profiles::merge(profile, rules);
        let expressions: Vec<_> = merged.iter().filter_map(|i| i.expression.clone()).collect();
        assert_eq!(
            expressions,
            [
                "EpisodeOfCare.patient",
                "EpisodeOfCare.type[0].coding[0].code",
                "EpisodeOfCare.patientX",
                "EpisodeOfCare.period.end"
            ]
        );
    }

    #[test]
    fn control_characters_but_tab_cr_and_lf_are_invalid_values_where_they_are() {
        let p = profiles();
        for c in ['\u{0}', '\u{7}', '\u{b}', '\u{c}', '\u{1b}', '\u{1f}'] {
            let mut plan = example("episode-of-care-valid.json");
            plan["identifier"][0]["value"] = json!(format!("P{c}1"));
            let issues = p.validate("EpisodeOfCare", "EpisodeOfCare", &plan);
            assert_eq!(issues.len(), 1, "{c:?}: {issues:?}");
            assert_eq!(issues[0].spine.code(), "INVALID_VALUE");
            assert_eq!(
                issues[0].expression.as_deref(),
                Some("EpisodeOfCare.identifier[0].value"),
                "{c:?}"
            );
        }
        let mut la = example("organization-valid.json");
        la["name"] = json!("Local\tauthority\r\nof tests\u{7f}");
        assert_eq!(p.validate("Organization", "Organization", &la), vec![]);
        la["name"] = json!("Local\u{1}authority");
        let found: Vec<_> = p
            .validate("Organization", "Organization", &la)
            .into_iter()
            .filter_map(|i| i.expression)
            .collect();
        assert_eq!(found, ["Organization.name"]);
        let mut upload = example("bundle-transaction-valid.json");
        upload["entry"][0]["request"]["url"] = json!("EpisodeOfCare\u{0}");
        let found: Vec<_> = p
            .validate("Bundle-transaction", "Bundle", &upload)
            .into_iter()
            .filter_map(|i| i.expression)
            .collect();
        assert!(
            found.contains(&"Bundle.entry[0].request.url".to_string()),
            "{found:?}"
        );
    }

    #[test]
    fn an_unknown_plan_code_is_an_invalid_value_at_the_code() {
        let mut plan = example("episode-of-care-valid.json");
        plan["type"][0]["coding"][0]["code"] = json!("12345");
        let issues = profiles().validate("EpisodeOfCare", "EpisodeOfCare", &plan);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].spine.code(), "INVALID_VALUE");
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("EpisodeOfCare.type[0].coding[0].code")
        );
    }

    #[test]
    fn the_audit_event_of_an_access_meets_its_profile() {
        let event = crate::fhir::audit_event::example();
        assert_eq!(
            profiles().validate("AuditEvent", "AuditEvent", &event),
            vec![]
        );
    }
}
