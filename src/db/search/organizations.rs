//! A page of matches read with the Organization each names, in one statement (`_include`).

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool};
use diesel::QueryResult;

use super::expression::{SqlExpression, SqlPredicate};
use crate::db::models::ResourceRow;
use crate::db::raw::RawStatement;
use crate::fhir::index::Index;
use crate::fhir::types::ODS_SYSTEM;
use crate::fhir::ResourceType;

/// A page of matches, each row joined (by primary keys: its `organization` token, the ODS
/// code's owner, that Organization) to the live Organization it names, if any. One LA's row
/// per match at most (an ODS code has one owner), so paging is the same as without it.
pub(super) struct PageWithOrganizations<'a> {
    /// The binds up to the predicates: the join's `deleted`, the type, the match's `deleted`.
    head: RawStatement,
    predicates: &'a [SqlPredicate],
    key: &'a SqlExpression<BigInt>,
    ascending: bool,
    /// `LIMIT … OFFSET …`.
    tail: RawStatement,
}

/// A match and the Organization it names.
#[derive(diesel::QueryableByName)]
pub(super) struct MatchWithOrganization {
    #[diesel(sql_type = diesel::sql_types::Text)]
    resource_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    version_id: i64,
    #[diesel(sql_type = BigInt)]
    last_updated: i64,
    #[diesel(sql_type = Bool)]
    deleted: bool,
    #[diesel(sql_type = diesel::sql_types::Text)]
    content: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    organization_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    organization_version_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    organization_last_updated: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    organization_content: Option<String>,
}

impl<'a> PageWithOrganizations<'a> {
    pub(super) fn new(
        ty: &str,
        predicates: &'a [SqlPredicate],
        key: &'a SqlExpression<BigInt>,
        ascending: bool,
        limit: i64,
        offset: i64,
    ) -> Self {
        let mut head = RawStatement::default();
        head.boolean(false)
            .sql(" WHERE resources.resource_type = ")
            .text(ty)
            .sql(" AND resources.deleted = ")
            .boolean(false);
        let mut tail = RawStatement::default();
        tail.big_int(limit).sql(" OFFSET ").big_int(offset);
        PageWithOrganizations {
            head,
            predicates,
            key,
            ascending,
            tail,
        }
    }
}

/// The matches in order, and the Organizations they name, each once (by id).
pub(super) fn split_organizations(
    joined: Vec<MatchWithOrganization>,
) -> (Vec<ResourceRow>, Vec<ResourceRow>) {
    let mut organizations: std::collections::BTreeMap<String, ResourceRow> =
        std::collections::BTreeMap::new();
    let rows = joined
        .into_iter()
        .map(|m| {
            if let (Some(id), Some(version_id), Some(last_updated), Some(content)) = (
                m.organization_id,
                m.organization_version_id,
                m.organization_last_updated,
                m.organization_content,
            ) {
                organizations.entry(id.clone()).or_insert(ResourceRow {
                    resource_type: ResourceType::Organization.as_str().to_string(),
                    id,
                    version_id,
                    last_updated,
                    deleted: false,
                    content,
                });
            }
            ResourceRow {
                resource_type: m.resource_type,
                id: m.id,
                version_id: m.version_id,
                last_updated: m.last_updated,
                deleted: m.deleted,
                content: m.content,
            }
        })
        .collect();
    (rows, organizations.into_values().collect())
}

impl QueryId for PageWithOrganizations<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for PageWithOrganizations<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Conn> diesel::RunQueryDsl<Conn> for PageWithOrganizations<'_> {}

impl<DB> QueryFragment<DB> for PageWithOrganizations<'_>
where
    DB: Backend,
    RawStatement: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(
            "SELECT resources.resource_type, resources.id, resources.version_id, \
             resources.last_updated, resources.deleted, resources.content, \
             organization.id AS organization_id, organization.version_id AS organization_version_id, \
             organization.last_updated AS organization_last_updated, \
             organization.content AS organization_content \
             FROM resources \
             LEFT JOIN search_tokens AS organization_token \
             ON organization_token.resource_type = resources.resource_type \
             AND organization_token.resource_id = resources.id \
             AND organization_token.param = '",
        );
        out.push_sql(Index::Organization.name());
        out.push_sql("' AND organization_token.system = '");
        out.push_sql(ODS_SYSTEM);
        out.push_sql(
            "' LEFT JOIN unique_identifiers AS organization_ods \
             ON organization_ods.resource_type = 'Organization' \
             AND organization_ods.system = organization_token.system \
             AND organization_ods.value = organization_token.value \
             LEFT JOIN resources AS organization \
             ON organization.resource_type = 'Organization' \
             AND organization.id = organization_ods.resource_id \
             AND organization.deleted = ",
        );
        self.head.walk_ast(out.reborrow())?;
        for p in self.predicates {
            out.push_sql(" AND ");
            p.walk_ast(out.reborrow())?;
        }
        out.push_sql(" ORDER BY ");
        self.key.walk_ast(out.reborrow())?;
        out.push_sql(if self.ascending { " ASC" } else { " DESC" });
        out.push_sql(", resources.id ASC LIMIT ");
        self.tail.walk_ast(out.reborrow())
    }
}
