//! The result parameters that shape what a read or search returns (FHIR R4 search §3.1.1.5):
//! `_summary`, `_elements`, `_total` and `_pretty`. They are parsed (and refused when invalid)
//! before a request is served, and applied to the answer as it is written, so the access is
//! recorded exactly as without them: a shaped answer never hides that a lookup happened.

use serde_json::{json, Map, Value};

use crate::error::FhirError;

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Summary {
    #[default]
    False,
    True,
    Text,
    Data,
    Count,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Total {
    None,
    Estimate,
    #[default]
    Accurate,
}

/// How an answer is shaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shaping {
    pub summary: Summary,
    /// `_elements`: the top-level elements asked for.
    pub elements: Option<Vec<String>>,
    pub total: Total,
    pub pretty: bool,
}

/// The tag a subsetted resource carries (FHIR R4 search §3.1.1.5.8).
pub const SUBSETTED: (&str, &str) = (
    "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "SUBSETTED",
);

fn invalid(param: &str, reason: &str) -> FhirError {
    FhirError::InvalidSearch {
        param: param.into(),
        reason: reason.into(),
    }
}

impl Shaping {
    /// The shaping a query asks for; an invalid value is 400 at its parameter.
    pub fn parse(query: &str) -> Result<Shaping, FhirError> {
        let mut shaping = Shaping::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "_summary" => {
                    shaping.summary = match value {
                        "true" => Summary::True,
                        "false" => Summary::False,
                        "text" => Summary::Text,
                        "data" => Summary::Data,
                        "count" => Summary::Count,
                        _ => return Err(invalid("_summary", "true | false | text | data | count")),
                    }
                }
                // `_totalMethod` (count | estimate | none) is Aidbox's name, which fhirpy's
                // count() sends.
                "_total" | "_totalMethod" => {
                    shaping.total = match value {
                        "none" => Total::None,
                        "estimate" => Total::Estimate,
                        "accurate" | "count" => Total::Accurate,
                        _ => {
                            return Err(invalid(
                                &name,
                                "none | estimate | accurate (_totalMethod: count)",
                            ))
                        }
                    }
                }
                "_pretty" => {
                    shaping.pretty = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid("_pretty", "true | false")),
                    }
                }
                "_elements" => {
                    let names: Vec<String> = value
                        .split(',')
                        .map(|e| e.trim().to_string())
                        .filter(|e| !e.is_empty())
                        .collect();
                    if let Some(bad) = names.iter().find(|e| !is_element_name(e)) {
                        return Err(invalid(
                            "_elements",
                            &format!("{bad:?} is not an element name (top-level elements only)"),
                        ));
                    }
                    shaping.elements.get_or_insert_with(Vec::new).extend(names);
                }
                _ => {}
            }
        }
        Ok(shaping)
    }

    /// Whether the answer is written as it is.
    pub fn is_identity(&self) -> bool {
        self.summary == Summary::False && self.elements.is_none() && self.total == Total::Accurate
    }

    /// The parameters, as a link carries them to the next page.
    pub fn link_params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        let summary = match self.summary {
            Summary::False => None,
            Summary::True => Some("true"),
            Summary::Text => Some("text"),
            Summary::Data => Some("data"),
            Summary::Count => Some("count"),
        };
        if let Some(summary) = summary {
            params.push(("_summary", summary.to_string()));
        }
        if let Some(elements) = &self.elements {
            params.push(("_elements", elements.join(",")));
        }
        match self.total {
            Total::None => params.push(("_total", "none".into())),
            Total::Estimate => params.push(("_total", "estimate".into())),
            Total::Accurate => {}
        }
        params
    }

    /// Shapes a response body: a searchset or history Bundle's matched resources, or the
    /// resource read. OperationOutcomes and included resources are left whole.
    pub fn apply(&self, body: &mut Value) {
        if self.is_identity() {
            return;
        }
        let is_bundle = body.get("resourceType").and_then(Value::as_str) == Some("Bundle");
        let bundle_type = body.get("type").and_then(Value::as_str).unwrap_or_default();
        if !(is_bundle && matches!(bundle_type, "searchset" | "history")) {
            self.subset(body);
            return;
        }
        let Some(bundle) = body.as_object_mut() else {
            return;
        };
        if self.summary == Summary::Count {
            bundle.remove("entry");
        } else if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
            for entry in entries {
                let mode = entry.pointer("/search/mode").and_then(Value::as_str);
                if matches!(mode, None | Some("match")) {
                    if let Some(resource) = entry.get_mut("resource") {
                        self.subset(resource);
                    }
                }
            }
        }
        if self.total == Total::None && self.summary != Summary::Count {
            bundle.remove("total");
        }
        if let Some(links) = bundle.get_mut("link").and_then(Value::as_array_mut) {
            let params = self.link_params();
            for link in links {
                if let Some(Value::String(url)) = link.get_mut("url") {
                    append_params(url, &params);
                }
            }
        }
    }

    /// Keeps the elements `_summary` / `_elements` ask for of one resource (with `id`, `meta`
    /// and its mandatory elements), tagged SUBSETTED.
    fn subset(&self, resource: &mut Value) {
        let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
            return;
        };
        if ty == "OperationOutcome" {
            return;
        }
        let ty = ty.to_string();
        let keep = |name: &str| -> bool {
            if ALWAYS.contains(&name) || mandatory(&ty).contains(&name) {
                return true;
            }
            let asked = self
                .elements
                .as_ref()
                .is_none_or(|elements| elements.iter().any(|e| e == name));
            let summarised = match self.summary {
                Summary::False | Summary::Count => true,
                Summary::True => summary_elements(&ty).contains(&name),
                Summary::Text => name == "text",
                Summary::Data => name != "text",
            };
            asked && summarised
        };
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        object.retain(|name, _| keep(name));
        // Tagged whenever a subset was asked for, even one that happens to leave nothing out
        // (a client reading it knows it may not update with it).
        if !matches!(self.summary, Summary::False | Summary::Count) || self.elements.is_some() {
            tag_subsetted(object);
        }
    }
}

/// Elements every shaped resource keeps.
const ALWAYS: &[&str] = &["resourceType", "id", "meta", "implicitRules"];

/// The top-level elements FHIR R4 marks as summary (Σ) for the types this server returns.
fn summary_elements(ty: &str) -> &'static [&'static str] {
    match ty {
        "Organization" => &["identifier", "active", "type", "name", "partOf"],
        "EpisodeOfCare" => &[
            "identifier",
            "status",
            "type",
            "diagnosis",
            "patient",
            "managingOrganization",
            "period",
            "careManager",
        ],
        "Flag" => &[
            "identifier",
            "status",
            "category",
            "code",
            "subject",
            "period",
            "encounter",
            "author",
        ],
        "AuditEvent" => &[
            "type",
            "subtype",
            "action",
            "period",
            "recorded",
            "outcome",
            "outcomeDesc",
            "purposeOfEvent",
        ],
        "Subscription" => &[
            "status", "contact", "end", "reason", "criteria", "error", "channel",
        ],
        "Bundle" => &[
            "identifier",
            "type",
            "timestamp",
            "total",
            "link",
            "entry",
            "signature",
        ],
        _ => &[],
    }
}

/// The top-level elements FHIR R4 requires (min 1), kept whatever is asked.
fn mandatory(ty: &str) -> &'static [&'static str] {
    match ty {
        "EpisodeOfCare" => &["status", "patient"],
        "Flag" => &["status", "code", "subject"],
        "AuditEvent" => &["type", "recorded", "agent", "source"],
        "Subscription" => &["status", "reason", "criteria", "channel"],
        "Bundle" => &["type"],
        _ => &[],
    }
}

fn is_element_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

fn tag_subsetted(resource: &mut Map<String, Value>) {
    let meta = resource
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(json!({"system": SUBSETTED.0, "code": SUBSETTED.1}));
        }
    }
}

/// `url` with `params` added to its query (those it already has are not repeated).
fn append_params(url: &mut String, params: &[(&str, String)]) {
    for (name, value) in params {
        if url.contains(&format!("{name}=")) {
            continue;
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair(name, value);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query.finish());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag() -> Value {
        json!({"resourceType": "Flag", "id": "f1", "meta": {"versionId": "1"},
               "status": "active", "code": {"text": "CP"}, "subject": {"display": "x"},
               "author": {"display": "LA"}, "period": {"start": "2026-01-01"},
               "extension": [{"url": "u"}]})
    }

    fn searchset() -> Value {
        json!({"resourceType": "Bundle", "type": "searchset", "total": 1,
               "link": [{"relation": "self", "url": "http://x/Flag?status=active"}],
               "entry": [{"resource": flag(), "search": {"mode": "match"}},
                         {"resource": {"resourceType": "Organization", "id": "o", "telecom": []},
                          "search": {"mode": "include"}}]})
    }

    #[test]
    fn invalid_values_are_refused_at_their_parameter() {
        for query in ["_summary=yes", "_total=some", "_pretty=1", "_elements=a.b"] {
            let err = Shaping::parse(query).unwrap_err();
            assert!(matches!(err, FhirError::InvalidSearch { .. }), "{query}");
        }
        assert!(Shaping::parse("_summary=").unwrap().is_identity());
    }

    #[test]
    fn summary_count_keeps_only_the_total() {
        let mut bundle = searchset();
        Shaping::parse("_summary=count").unwrap().apply(&mut bundle);
        assert!(bundle.get("entry").is_none());
        assert_eq!(bundle["total"], 1);
        assert!(bundle["link"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("status=active&_summary=count"));
    }

    #[test]
    fn elements_keep_the_asked_and_the_mandatory_and_tag_the_subset() {
        let mut bundle = searchset();
        Shaping::parse("_elements=period")
            .unwrap()
            .apply(&mut bundle);
        let flag = &bundle["entry"][0]["resource"];
        let mut kept: Vec<&str> = flag
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            [
                "code",
                "id",
                "meta",
                "period",
                "resourceType",
                "status",
                "subject"
            ]
        );
        assert_eq!(flag["meta"]["tag"][0]["code"], "SUBSETTED");
        // An included resource is left whole.
        assert!(bundle["entry"][1]["resource"].get("telecom").is_some());
    }

    #[test]
    fn summary_true_keeps_the_summary_elements() {
        let mut resource = flag();
        Shaping::parse("_summary=true")
            .unwrap()
            .apply(&mut resource);
        assert!(resource.get("extension").is_none());
        assert_eq!(resource["author"]["display"], "LA");
    }

    #[test]
    fn total_none_drops_the_total_and_an_unshaped_answer_is_untouched() {
        let mut bundle = searchset();
        Shaping::parse("_total=none").unwrap().apply(&mut bundle);
        assert!(bundle.get("total").is_none());
        let mut whole = searchset();
        Shaping::parse("_pretty=true").unwrap().apply(&mut whole);
        assert_eq!(whole, searchset());
    }
}
