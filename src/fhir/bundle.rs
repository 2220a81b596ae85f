//! Bundles the server returns: searchset and history.

use serde_json::{json, Value};

use super::types::instant;

/// A searchset entry: the resource and whether it matched or was included.
pub struct SearchEntry {
    pub resource: Value,
    pub mode: &'static str,
}

/// A searchset Bundle with absolute `fullUrl`s and `self`/`next` links.
pub fn searchset(
    base: &str,
    total: i64,
    entries: Vec<SearchEntry>,
    self_link: String,
    next_link: Option<String>,
) -> Value {
    let mut links = vec![json!({"relation": "self", "url": self_link})];
    if let Some(next) = next_link {
        links.push(json!({"relation": "next", "url": next}));
    }
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let full_url = full_url(base, &e.resource);
            json!({"fullUrl": full_url, "resource": e.resource, "search": {"mode": e.mode}})
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": instant(chrono::Utc::now().timestamp_millis())},
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    })
}

/// A search's link: `base/ty` and its parameters, percent-encoded (so a token's `|` is `%7C`
/// and the link is a valid `uri`).
pub fn search_link<K: AsRef<str>, V: AsRef<str>>(
    base: &str,
    ty: &str,
    params: impl IntoIterator<Item = (K, V)>,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(params);
    match query.finish() {
        query if query.is_empty() => format!("{base}/{ty}"),
        query => format!("{base}/{ty}?{query}"),
    }
}

/// `{base}/{resourceType}/{id}`.
pub fn full_url(base: &str, resource: &Value) -> String {
    format!(
        "{base}/{}/{}",
        resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

/// One version of a resource as its history lists it.
pub struct Version {
    pub version_id: i64,
    /// When it was made, in epoch milliseconds.
    pub last_updated: i64,
    /// None: the version is a deletion.
    pub resource: Option<Value>,
}

/// An instance history Bundle, newest version first. A deleted version has no resource.
pub fn history(base: &str, ty: &str, id: &str, versions: Vec<Version>) -> Value {
    let total = versions.len();
    let entries: Vec<Value> = versions
        .into_iter()
        .map(|version| {
            let Version {
                version_id,
                last_updated,
                resource,
            } = version;
            let url = format!("{base}/{ty}/{id}");
            let (method, status) = match (&resource, version_id) {
                (None, _) => ("DELETE", "204"),
                (Some(_), 1) => ("POST", "201"),
                (Some(_), _) => ("PUT", "200"),
            };
            let request_url = if method == "POST" {
                ty.to_string()
            } else {
                format!("{ty}/{id}")
            };
            let mut entry = json!({
                "fullUrl": url,
                "request": {"method": method, "url": request_url},
                "response": {
                    "status": status,
                    "etag": format!("W/\"{version_id}\""),
                    "lastModified": instant(last_updated),
                }
            });
            if let (Some(r), Some(obj)) = (resource, entry.as_object_mut()) {
                obj.insert("resource".into(), r);
            }
            entry
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "history",
        "total": total,
        "link": [{"relation": "self", "url": format!("{base}/{ty}/{id}/_history")}],
        "entry": entries,
    })
}
