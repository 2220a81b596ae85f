//! The versioned resource store, for any resource type: create, read, vread, update, delete,
//! history, plus the search index rows and unique business identifiers that go with them.
//! Callers run these inside one transaction (see `db::write_transaction`).

use diesel::prelude::*;

use super::models::{IdentifierRow, ResourceRow, StoredVersion, VersionRow};
use super::raw::{insert_rows, ROWS_PER_STATEMENT};
use super::schema::{
    resource_versions, resources, search_dates, search_tokens, unique_identifiers,
};
use super::DbConn;

use crate::fhir::index::{DateEntry, IndexEntries, TokenEntry};

/// The current row of a resource (deleted ones included: they answer 410).
pub fn current(conn: &mut DbConn, ty: &str, id: &str) -> QueryResult<Option<ResourceRow>> {
    resources::table
        .filter(resources::resource_type.eq(ty))
        .filter(resources::id.eq(id))
        .select(ResourceRow::as_select())
        .first(conn)
        .optional()
}

/// Several current, live resources by id (for `_include`).
pub fn current_many(conn: &mut DbConn, ty: &str, ids: &[String]) -> QueryResult<Vec<ResourceRow>> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut rows = current_by_ids(conn, ty, &ids)?;
    rows.retain(|row| !row.deleted);
    Ok(rows)
}

/// One version of a resource: a superseded one from the history, else the current one.
pub fn version(
    conn: &mut DbConn,
    ty: &str,
    id: &str,
    version: i64,
) -> QueryResult<Option<ResourceRow>> {
    let superseded = resource_versions::table
        .filter(resource_versions::resource_type.eq(ty))
        .filter(resource_versions::id.eq(id))
        .filter(resource_versions::version_id.eq(version))
        .select(StoredVersion::as_select())
        .first(conn)
        .optional()?;
    match superseded {
        Some(row) => Ok(Some(row.into())),
        None => Ok(current(conn, ty, id)?.filter(|row| row.version_id == version)),
    }
}

/// Every version, newest first: the current one, then the superseded ones.
pub fn history(conn: &mut DbConn, ty: &str, id: &str) -> QueryResult<Vec<ResourceRow>> {
    let Some(current) = current(conn, ty, id)? else {
        return Ok(Vec::new());
    };
    let superseded = resource_versions::table
        .filter(resource_versions::resource_type.eq(ty))
        .filter(resource_versions::id.eq(id))
        .order(resource_versions::version_id.desc())
        .select(StoredVersion::as_select())
        .load(conn)?;
    Ok(std::iter::once(current)
        .chain(superseded.into_iter().map(ResourceRow::from))
        .collect())
}

/// Keeps a version that is being superseded in the history.
fn keep_superseded(conn: &mut DbConn, row: &ResourceRow) -> QueryResult<()> {
    diesel::insert_into(resource_versions::table)
        .values(VersionRow {
            resource_type: &row.resource_type,
            id: &row.id,
            version_id: row.version_id,
            last_updated: row.last_updated,
            deleted: row.deleted,
            content: &row.content,
        })
        .execute(conn)
        .map(|_| ())
}

/// Stores version 1 of a new resource. The current version lives in `resources` only;
/// `resource_versions` holds the versions superseded since (the content is not written twice).
pub fn insert(conn: &mut DbConn, row: &ResourceRow) -> QueryResult<()> {
    diesel::insert_into(resources::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Stores `row` as the version after `previous` (the current version as this transaction read
/// it), which moves to the history. Returns false when another writer got there first
/// (optimistic concurrency: on PostgreSQL the UPDATE waits for the other transaction, then
/// re-checks the version); then nothing is written.
pub fn replace(conn: &mut DbConn, previous: &ResourceRow, row: &ResourceRow) -> QueryResult<bool> {
    let updated = diesel::update(
        resources::table
            .filter(resources::resource_type.eq(&row.resource_type))
            .filter(resources::id.eq(&row.id))
            .filter(resources::version_id.eq(previous.version_id)),
    )
    .set((
        resources::version_id.eq(row.version_id),
        resources::last_updated.eq(row.last_updated),
        resources::deleted.eq(row.deleted),
        resources::content.eq(&row.content),
    ))
    .execute(conn)?;
    // A version's content never changes once written: the row just replaced is `previous`.
    if updated == 1 {
        keep_superseded(conn, previous)?;
    }
    Ok(updated == 1)
}

/// Replaces the index rows of a resource with `entries` (none for a deleted resource). A
/// `fresh` resource has none to remove yet.
pub fn reindex(
    conn: &mut DbConn,
    ty: &str,
    id: &str,
    entries: &IndexEntries,
    fresh: bool,
) -> QueryResult<()> {
    if !fresh {
        remove_index(conn, ty, id)?;
    }
    insert_index(conn, ty, id, entries)
}

fn remove_index(conn: &mut DbConn, ty: &str, id: &str) -> QueryResult<()> {
    diesel::delete(
        search_tokens::table
            .filter(search_tokens::resource_type.eq(ty))
            .filter(search_tokens::resource_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        search_dates::table
            .filter(search_dates::resource_type.eq(ty))
            .filter(search_dates::resource_id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

fn insert_index(conn: &mut DbConn, ty: &str, id: &str, entries: &IndexEntries) -> QueryResult<()> {
    let tokens: Vec<(&str, &TokenEntry)> = entries.tokens.iter().map(|t| (id, t)).collect();
    let dates: Vec<(&str, &DateEntry)> = entries.dates.iter().map(|d| (id, d)).collect();
    insert_index_rows(conn, ty, &tokens, &dates)
}

/// The index rows of several resources of one type, a multi-row statement per table.
fn insert_index_rows(
    conn: &mut DbConn,
    ty: &str,
    tokens: &[(&str, &TokenEntry)],
    dates: &[(&str, &DateEntry)],
) -> QueryResult<()> {
    insert_rows(
        conn,
        "INSERT INTO search_tokens (resource_type, resource_id, param, system, value) VALUES ",
        "",
        tokens,
        |row, (id, t)| {
            row.text(ty)
                .text(id)
                .text(t.param.name())
                .text(&t.system)
                .text(&t.value);
        },
    )?;
    insert_rows(
        conn,
        "INSERT INTO search_dates (resource_type, resource_id, param, start_ms, end_ms) VALUES ",
        "",
        dates,
        |row, (id, d)| {
            row.text(ty)
                .text(id)
                .text(d.param.name())
                .big_int(d.start_ms)
                .big_int(d.end_ms);
        },
    )
}

/// Version 1 of a new resource, with its index entries and the business identifier it claims.
#[derive(Debug, Clone)]
pub struct NewResource {
    pub row: ResourceRow,
    pub entries: IndexEntries,
    pub identifier: Option<(String, String)>,
}

/// Stores many new resources (all of type `ty`) in a few multi-row statements: what `insert`,
/// `claim_identifier` and `reindex` do for one, each table written once. A unique violation
/// fails the whole call (an identifier claimed meanwhile: the caller cannot tell whose).
pub fn insert_new(conn: &mut DbConn, ty: &str, new: &[NewResource]) -> QueryResult<()> {
    let claims: Vec<(&str, &(String, String))> = new
        .iter()
        .filter_map(|n| n.identifier.as_ref().map(|i| (n.row.id.as_str(), i)))
        .collect();
    insert_rows(
        conn,
        "INSERT INTO unique_identifiers (resource_type, system, value, resource_id) VALUES ",
        "",
        &claims,
        |row, (id, (system, value))| {
            row.text(ty).text(system).text(value).text(id);
        },
    )?;
    insert_rows(
        conn,
        "INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content) \
         VALUES ",
        "",
        new,
        |row, n| {
            row.text(ty)
                .text(&n.row.id)
                .big_int(n.row.version_id)
                .big_int(n.row.last_updated)
                .boolean(n.row.deleted)
                .text(&n.row.content);
        },
    )?;
    let tokens: Vec<(&str, &TokenEntry)> = new
        .iter()
        .flat_map(|n| n.entries.tokens.iter().map(|t| (n.row.id.as_str(), t)))
        .collect();
    let dates: Vec<(&str, &DateEntry)> = new
        .iter()
        .flat_map(|n| n.entries.dates.iter().map(|d| (n.row.id.as_str(), d)))
        .collect();
    insert_index_rows(conn, ty, &tokens, &dates)
}

/// The resources holding these business identifiers: (system, value, resource id).
pub fn find_by_identifiers(
    conn: &mut DbConn,
    ty: &str,
    identifiers: &[(String, String)],
) -> QueryResult<Vec<(String, String, String)>> {
    let mut systems: Vec<&str> = identifiers.iter().map(|(s, _)| s.as_str()).collect();
    systems.sort_unstable();
    systems.dedup();
    let mut found = Vec::new();
    for system in systems {
        let values: Vec<&str> = identifiers
            .iter()
            .filter(|(s, _)| s == system)
            .map(|(_, v)| v.as_str())
            .collect();
        for chunk in values.chunks(ROWS_PER_STATEMENT) {
            let holders = match conn {
                DbConn::Postgres(c) => identifier_holders_pg(c, ty, system, chunk)?,
                DbConn::Sqlite(_) => unique_identifiers::table
                    .filter(unique_identifiers::resource_type.eq(ty))
                    .filter(unique_identifiers::system.eq(system))
                    .filter(unique_identifiers::value.eq_any(chunk))
                    .select((unique_identifiers::value, unique_identifiers::resource_id))
                    .load::<(String, String)>(conn)?,
            };
            found.extend(
                holders
                    .into_iter()
                    .map(|(value, id)| (system.to_string(), value, id)),
            );
        }
    }
    Ok(found)
}

/// `identifier_holders_pg`'s statement: `$1` the resource type, `$2` the system, `$3` the values.
pub const PG_IDENTIFIER_HOLDERS: &str = "SELECT wanted.value, held.resource_id \
     FROM unnest($3::text[]) AS wanted(value) \
     CROSS JOIN LATERAL (SELECT u.resource_id FROM unique_identifiers u \
         WHERE u.resource_type = $1 AND u.system = $2 AND u.value = wanted.value \
         LIMIT 1) AS held";

#[derive(QueryableByName)]
struct IdentifierHolder {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    resource_id: String,
}

/// PostgreSQL: one primary-key probe per value, whatever the planner knows. Asked as
/// `value = ANY($3)`, a table never analysed gets the default selectivity for `resource_type`
/// and for `system` (one row in 40,000 together), so the planner read every identifier of the
/// system and filtered them: each part of an LA's first upload read all the plans before it
/// (10.7 of 14 s of database time over a 100,000-plan upload). A `LATERAL` subquery with
/// `LIMIT` cannot be merged into a join: it runs once per value, on the whole key.
fn identifier_holders_pg(
    conn: &mut diesel::PgConnection,
    ty: &str,
    system: &str,
    values: &[&str],
) -> QueryResult<Vec<(String, String)>> {
    use diesel::sql_types::{Array, Text};
    let rows: Vec<IdentifierHolder> = diesel::sql_query(PG_IDENTIFIER_HOLDERS)
        .bind::<Text, _>(ty)
        .bind::<Text, _>(system)
        .bind::<Array<Text>, _>(values)
        .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.value, r.resource_id)).collect())
}

/// The current rows of several resources by id, deleted ones included: on SQLite one cached
/// statement per id (`per_key`), on PostgreSQL the ids bound as one array, planned for its
/// values at each execution. (Reading an `_include`'s one id with a kept plan instead made
/// lookups on a new database fall to a tenth of their rate in one run: a generic plan made
/// before the statistics knew the table.)
pub fn current_by_ids(conn: &mut DbConn, ty: &str, ids: &[&str]) -> QueryResult<Vec<ResourceRow>> {
    super::per_key(
        conn,
        ids,
        |conn, id| Ok(current(conn, ty, id)?.into_iter().collect()),
        |conn, ids| {
            let mut rows = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                rows.extend(
                    resources::table
                        .filter(resources::resource_type.eq(ty))
                        .filter(resources::id.eq_any(chunk))
                        .select(ResourceRow::as_select())
                        .load(conn)?,
                );
            }
            Ok(rows)
        },
    )
}

/// The resource holding a unique business identifier, if any.
pub fn find_by_identifier(
    conn: &mut DbConn,
    ty: &str,
    system: &str,
    value: &str,
) -> QueryResult<Option<String>> {
    unique_identifiers::table
        .filter(unique_identifiers::resource_type.eq(ty))
        .filter(unique_identifiers::system.eq(system))
        .filter(unique_identifiers::value.eq(value))
        .select(unique_identifiers::resource_id)
        .first(conn)
        .optional()
}

/// Claims a unique business identifier for `id`. Fails with a unique violation when another
/// resource holds it, which is what keeps concurrent conditional creates from duplicating.
pub fn claim_identifier(
    conn: &mut DbConn,
    ty: &str,
    system: &str,
    value: &str,
    id: &str,
) -> QueryResult<()> {
    diesel::insert_into(unique_identifiers::table)
        .values(IdentifierRow {
            resource_type: ty,
            system,
            value,
            resource_id: id,
        })
        .execute(conn)
        .map(|_| ())
}

/// Releases every identifier held by `id` (on delete, or before re-claiming on update).
pub fn release_identifiers(conn: &mut DbConn, ty: &str, id: &str) -> QueryResult<()> {
    diesel::delete(
        unique_identifiers::table
            .filter(unique_identifiers::resource_type.eq(ty))
            .filter(unique_identifiers::resource_id.eq(id)),
    )
    .execute(conn)
    .map(|_| ())
}

/// How many live resources of a type there are (tests and the sandbox use it).
pub fn count_live(conn: &mut DbConn, ty: &str) -> QueryResult<i64> {
    resources::table
        .filter(resources::resource_type.eq(ty))
        .filter(resources::deleted.eq(false))
        .count()
        .get_result(conn)
}
