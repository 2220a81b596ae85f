//! Row structs, no logic.

use diesel::prelude::*;

use super::schema::{resource_versions, resources, search_dates, unique_identifiers};

/// One version of a resource: the current row (`resources`) or a history row
/// (`resource_versions`) have the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = resources)]
pub struct ResourceRow {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub content: String,
}

/// A history row as read back; the same shape as `ResourceRow`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = resource_versions)]
pub struct StoredVersion {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub content: String,
}

impl From<StoredVersion> for ResourceRow {
    fn from(v: StoredVersion) -> Self {
        ResourceRow {
            resource_type: v.resource_type,
            id: v.id,
            version_id: v.version_id,
            last_updated: v.last_updated,
            deleted: v.deleted,
            content: v.content,
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = resource_versions)]
pub struct VersionRow<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub version_id: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub content: &'a str,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = search_dates)]
pub struct DateRow<'a> {
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub param: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = unique_identifiers)]
pub struct IdentifierRow<'a> {
    pub resource_type: &'a str,
    pub system: &'a str,
    pub value: &'a str,
    pub resource_id: &'a str,
}
