//! The domain operations behind the API: each runs inside one database transaction, with the
//! caller's authority checked against the data it touches. No HTTP here, and no SQL (that is
//! `db::store` and `db::search`).

pub mod access_history;
pub mod organization;
pub mod part;
pub mod plan;
pub mod read;
pub mod search;
pub mod subscription;
pub mod upload;

use serde_json::Value;

use crate::db::models::ResourceRow;
use crate::error::FhirError;
use crate::fhir::ResourceType;

/// The outcome of a write: the version now current, and whether it was newly created.
#[derive(Debug, Clone)]
pub struct Written {
    pub row: ResourceRow,
    pub created: bool,
}

/// The resource JSON of a stored row.
pub fn parse_content(row: &ResourceRow) -> Result<Value, FhirError> {
    serde_json::from_str(&row.content)
        .map_err(|e| FhirError::internal(format!("stored {} is not JSON: {e}", row.resource_type)))
}

/// A stored row of a given type, 404 if absent, 410 if deleted.
pub fn require_live(
    row: Option<ResourceRow>,
    ty: ResourceType,
    id: &str,
) -> Result<ResourceRow, FhirError> {
    match row {
        None => Err(FhirError::NotFound {
            ty: ty.as_str().into(),
            id: id.into(),
        }),
        Some(r) if r.deleted => Err(FhirError::Gone {
            ty: ty.as_str().into(),
            id: id.into(),
        }),
        Some(r) => Ok(r),
    }
}

/// `system|value` of a conditional request's `identifier` parameter (the only criterion the
/// conditional interactions accept).
pub fn conditional_identifier(
    ty: ResourceType,
    query: &str,
) -> Result<(String, String), FhirError> {
    let mut found = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "identifier" if found.is_none() => {
                let (system, value) =
                    value
                        .split_once('|')
                        .ok_or_else(|| FhirError::InvalidSearch {
                            param: "identifier".into(),
                            reason: "conditional requests need identifier=system|value".into(),
                        })?;
                if system.is_empty() || value.is_empty() {
                    return Err(FhirError::InvalidSearch {
                        param: "identifier".into(),
                        reason: "conditional requests need identifier=system|value".into(),
                    });
                }
                found = Some((system.to_string(), value.to_string()));
            }
            "_format" => {}
            other => {
                return Err(FhirError::UnknownParameter {
                    param: format!("{}?{other}", ty.as_str()),
                })
            }
        }
    }
    found.ok_or_else(|| FhirError::InvalidSearch {
        param: "identifier".into(),
        reason: "a conditional request needs identifier=system|value".into(),
    })
}

/// Whether two resource bodies are the same once server-owned elements are set aside.
pub fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("meta");
            o.remove("id");
            o.remove("text");
        }
        v
    };
    strip(a) == strip(b)
}

/// What a new version is: live, with its search index entries, or a deletion.
pub enum NewVersion<'a> {
    Live(&'a crate::fhir::index::IndexEntries),
    Deleted,
}

/// Writes the next version of a resource (version 1 when `previous` is None) with its index
/// entries; a deleted version keeps the last content and leaves the index empty. Fails with 412
/// when another writer changed the resource since `previous` was read.
pub fn write_version(
    conn: &mut crate::db::DbConn,
    ty: ResourceType,
    id: &str,
    content: Value,
    previous: Option<&ResourceRow>,
    state: NewVersion<'_>,
    now: i64,
) -> Result<ResourceRow, FhirError> {
    use crate::db::store;
    let empty = crate::fhir::index::IndexEntries::default();
    let (deleted, entries) = match state {
        NewVersion::Live(entries) => (false, entries),
        NewVersion::Deleted => (true, &empty),
    };
    let row = next_version(ty, id, content, previous, deleted, now);
    match previous {
        None => store::insert(conn, &row)?,
        Some(prev) => {
            if !store::replace(conn, prev, &row)? {
                return Err(FhirError::VersionMismatch {
                    expected: prev.version_id.to_string(),
                    actual: prev.version_id + 1,
                });
            }
        }
    }
    let empty = crate::fhir::index::IndexEntries::default();
    store::reindex(
        conn,
        ty.as_str(),
        id,
        if deleted { &empty } else { entries },
        previous.is_none(),
    )?;
    Ok(row)
}

/// The row of the version after `previous` (version 1 when None), its content stamped with
/// the id, version and time.
pub fn next_version(
    ty: ResourceType,
    id: &str,
    mut content: Value,
    previous: Option<&ResourceRow>,
    deleted: bool,
    now: i64,
) -> ResourceRow {
    let version = previous.map_or(1, |p| p.version_id + 1);
    crate::fhir::types::stamp(&mut content, ty, id, version, now);
    ResourceRow {
        resource_type: ty.as_str().to_string(),
        id: id.to_string(),
        version_id: version,
        last_updated: now,
        deleted,
        content: content.to_string(),
    }
}

/// Checks an `If-Match` version against the current one.
pub fn check_if_match(if_match: Option<i64>, current: &ResourceRow) -> Result<(), FhirError> {
    match if_match {
        Some(expected) if expected != current.version_id => Err(FhirError::VersionMismatch {
            expected: expected.to_string(),
            actual: current.version_id,
        }),
        _ => Ok(()),
    }
}
