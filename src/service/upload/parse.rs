//! Checking an upload: the Bundle's envelope and each entry, before anything is written.

use serde_json::Value;

use super::{Kind, Operation, Upload, PLAN_TYPE};
use crate::error::{FhirError, Issue, SpineCode};
use crate::fhir::ResourceType;
use crate::service::conditional_identifier;
use crate::service::plan::PlanInput;
use crate::validation::Profiles;

/// The prefix an entry's issues are named under.
fn entry_path(index: usize) -> String {
    format!("Bundle.entry[{index}]")
}

/// The same error (and status) with every issue at `expression`.
fn at(expression: &str, error: FhirError) -> FhirError {
    use actix_web::ResponseError;
    FhirError::InEntry {
        status: error.status_code().as_u16(),
        issues: error
            .issues()
            .into_iter()
            .map(|mut i| {
                i.expression = Some(expression.into());
                i
            })
            .collect(),
    }
}

/// Re-roots an error's issues at entry `index`: `EpisodeOfCare.period.start` becomes
/// `Bundle.entry[3].resource.period.start`; an issue without an element names the entry.
pub fn in_entry(index: usize, error: FhirError) -> FhirError {
    use actix_web::ResponseError;
    let status = error.status_code().as_u16();
    let entry = entry_path(index);
    let issues = error
        .issues()
        .into_iter()
        .map(|mut issue| {
            issue.expression = Some(match issue.expression.as_deref() {
                Some(e) if e.starts_with("Bundle.entry[") => e.to_string(),
                None | Some("") => entry.clone(),
                Some(e) => match e.strip_prefix(PLAN_TYPE) {
                    Some(rest) => format!("{entry}.resource{rest}"),
                    None => format!("{entry}.{e}"),
                },
            });
            issue
        })
        .collect();
    FhirError::InEntry { status, issues }
}

/// Checks the envelope and every entry. Too many entries is 413; a Bundle that is not a
/// transaction or batch is 422.
pub fn parse(
    profiles: &Profiles,
    mut bundle: Value,
    max_entries: usize,
) -> Result<Upload, FhirError> {
    let kind = match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => Kind::Transaction,
        Some("batch") => Kind::Batch,
        _ => {
            return Err(FhirError::Invalid(vec![Issue::invalid(
                "Bundle.type",
                "an upload is a transaction or batch Bundle",
            )]))
        }
    };
    if let Some(obj) = bundle.as_object() {
        let unknown: Vec<Issue> = obj
            .keys()
            .filter(|k| !["resourceType", "id", "meta", "type", "entry"].contains(&k.as_str()))
            .map(|k| {
                Issue::not_allowed(
                    format!("Bundle.{k}"),
                    format!("{k} is not allowed in an upload"),
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(FhirError::Invalid(unknown));
        }
    }
    let entries = match bundle.as_object_mut().and_then(|b| b.remove("entry")) {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return Err(FhirError::Invalid(vec![Issue::invalid(
                "Bundle.entry",
                "entry must be a list",
            )]))
        }
    };
    if entries.len() > max_entries {
        return Err(FhirError::InEntry {
            status: 413,
            issues: vec![Issue::at(
                "too-costly",
                SpineCode::FailureToProcessMessage,
                "Bundle.entry",
                format!(
                    "{} entries: an upload may hold at most {max_entries}; send it in parts",
                    entries.len()
                ),
            )],
        });
    }
    let entries = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| parse_entry(profiles, entry).map_err(|e| in_entry(i, e)))
        .collect();
    Ok(Upload { kind, entries })
}

fn parse_entry(profiles: &Profiles, entry: Value) -> Result<Operation, FhirError> {
    let Value::Object(mut entry) = entry else {
        return Err(FhirError::Invalid(vec![Issue::invalid(
            "",
            "an entry must be an object",
        )]));
    };
    let issues = entry_shape_issues(&entry);
    if !issues.is_empty() {
        return Err(FhirError::Invalid(issues));
    }
    let request = entry.remove("request").unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str);
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let resource = entry.remove("resource");
    match method {
        Some("POST") if url == PLAN_TYPE => {
            let if_none_exist = if_none_exist(&request)?;
            Ok(Operation::Create {
                input: entry_plan(profiles, resource)?,
                if_none_exist,
            })
        }
        Some("PUT") => {
            let identifier = identifier_in_url(url)?;
            let if_match = if_match(&request)?;
            Ok(Operation::Upsert {
                identifier,
                input: entry_plan(profiles, resource)?,
                if_match,
            })
        }
        Some("DELETE") => {
            if resource.is_some() {
                return Err(FhirError::Invalid(vec![Issue::not_allowed(
                    "resource",
                    "a DELETE entry carries no resource",
                )]));
            }
            Ok(Operation::Delete {
                identifier: identifier_in_url(url)?,
            })
        }
        Some("POST") => Err(FhirError::Invalid(vec![Issue::invalid(
            "request.url",
            "POST entries create plans: the url must be EpisodeOfCare",
        )])),
        _ => Err(FhirError::Invalid(vec![Issue::invalid(
            "request.method",
            "request.method must be POST, PUT or DELETE",
        )])),
    }
}

/// What is wrong with an entry's own elements: unknown ones, a `fullUrl` that is neither an
/// absolute URL nor `urn:uuid:`, a missing `request.method`.
fn entry_shape_issues(entry: &serde_json::Map<String, Value>) -> Vec<Issue> {
    let mut issues: Vec<Issue> = entry
        .keys()
        .filter(|k| !["fullUrl", "resource", "request"].contains(&k.as_str()))
        .map(|k| Issue::not_allowed(k.clone(), format!("{k} is not allowed in an upload entry")))
        .collect();
    if let Some(full_url) = entry.get("fullUrl") {
        let ok = full_url.as_str().is_some_and(|u| {
            u.strip_prefix("urn:uuid:").map_or_else(
                || url::Url::parse(u).is_ok(),
                |id| uuid::Uuid::parse_str(id).is_ok(),
            )
        });
        if !ok {
            issues.push(Issue::invalid(
                "fullUrl",
                "fullUrl must be an absolute URL or urn:uuid:<uuid>",
            ));
        }
    }
    if entry
        .get("request")
        .and_then(|r| r.get("method"))
        .and_then(Value::as_str)
        .is_none()
    {
        issues.push(Issue::missing(
            "request.method",
            "request.method is required (POST, PUT or DELETE)",
        ));
    }
    issues
}

/// The plan identifier of a conditional entry's `EpisodeOfCare?identifier=system|value`.
fn identifier_in_url(url: &str) -> Result<(String, String), FhirError> {
    let query = url.strip_prefix("EpisodeOfCare?").ok_or_else(|| {
        FhirError::Invalid(vec![Issue::invalid(
            "request.url",
            "the url must be EpisodeOfCare?identifier=system|value",
        )])
    })?;
    conditional_identifier(ResourceType::EpisodeOfCare, query).map_err(|e| at("request.url", e))
}

/// The plan a POST or PUT entry carries, checked as any plan write is.
fn entry_plan(profiles: &Profiles, resource: Option<Value>) -> Result<PlanInput, FhirError> {
    let resource = resource.ok_or_else(|| {
        FhirError::Invalid(vec![Issue::missing(
            "resource",
            "POST and PUT entries carry the plan",
        )])
    })?;
    if resource.get("resourceType").and_then(Value::as_str) != Some(PLAN_TYPE) {
        return Err(FhirError::Invalid(vec![Issue::invalid(
            "resource.resourceType",
            "an upload holds EpisodeOfCare resources only",
        )]));
    }
    PlanInput::check(profiles, resource)
}

/// A POST entry's `request.ifNoneExist` (`identifier=system|value`), if any.
fn if_none_exist(request: &Value) -> Result<Option<(String, String)>, FhirError> {
    request
        .get("ifNoneExist")
        .and_then(Value::as_str)
        .map(|q| {
            conditional_identifier(ResourceType::EpisodeOfCare, q.trim_start_matches('?'))
                .map_err(|e| at("request.ifNoneExist", e))
        })
        .transpose()
}

/// A PUT entry's `request.ifMatch` (a version ETag such as `W/"1"`), if any.
fn if_match(request: &Value) -> Result<Option<i64>, FhirError> {
    request
        .get("ifMatch")
        .and_then(Value::as_str)
        .map(|v| {
            v.trim_start_matches("W/")
                .trim_matches('"')
                .parse()
                .map_err(|_| {
                    FhirError::Invalid(vec![Issue::invalid(
                        "request.ifMatch",
                        "ifMatch must be a version ETag such as W/\"1\"",
                    )])
                })
        })
        .transpose()
}
