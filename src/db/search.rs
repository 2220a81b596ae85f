//! Runs a parsed search as one query over `resources` and the index tables: each filter is an
//! `id IN (SELECT resource_id FROM search_… WHERE …)` served by the index tables' keys.
//!
//! Predicates are built as `SqlPredicate`s (SQL text with typed binds) rather than diesel DSL
//! subselects: `MultiBackend` cannot box a subselect, and this keeps each placeholder correct
//! for its engine (`?` on SQLite, `$n` on PostgreSQL). Only portable SQL is written here.

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, SqlType};
use std::marker::PhantomData;

use crate::clock::uk_date;
use crate::db::models::ResourceRow;
use crate::db::raw::RawStatement;
use crate::db::schema::resources;
use crate::db::{DbBackend, DbConn};
use crate::fhir::index::Index;
use crate::fhir::period::{DayPeriod, IN_FORCE_FROM, IN_FORCE_UNTIL};
use crate::fhir::types::ODS_SYSTEM;
use crate::fhir::ResourceType;
use crate::search::params::SortKey;
use crate::search::parse::{DatePrefix, Filter, FlagStatus, SearchRequest, TokenValue};

/// One page of matches, newest first, how many match in all, and (when asked for) the
/// Organizations the page's matches name, each once.
pub struct Page {
    pub rows: Vec<ResourceRow>,
    pub total: i64,
    pub organizations: Vec<ResourceRow>,
}

/// Token indexes whose one value names one child or one plan: a filter on them drives the query.
const SELECTIVE_INDEXES: &[Index] = &[Index::Patient, Index::Identifier];

/// Runs `req` with `extra` filters (ownership, withdrawn-record hiding) applied too. With
/// `with_organizations`, each match is read with the live Organization its `organization`
/// index names (a plan's or a Flag's LA, by ODS code), in the same statement: an `_include`
/// costs no second round trip.
pub fn execute(
    conn: &mut DbConn,
    req: &SearchRequest,
    extra: &[Filter],
    now_ms: i64,
    with_organizations: bool,
) -> QueryResult<Page> {
    let ty = req.ty.as_str();
    // Token filters in the order they narrow the matches: one child's or one plan's entries
    // first. The first drives the query as an `IN` over the index; later ones (e.g. the
    // caller's LA) are probed per candidate with `EXISTS`, rather than materialising every id
    // the LA owns.
    let mut filters: Vec<&Filter> = req.filters.iter().chain(extra).collect();
    filters.sort_by_key(|f| match f {
        Filter::Token { index, .. } if SELECTIVE_INDEXES.contains(index) => 0,
        Filter::Token { .. } => 1,
        _ => 2,
    });
    // A lookup (one NHS number, one plan reference) matches a handful of rows: it must be
    // answered from the token index whatever the planner knows. Ordering by an expression
    // rather than the column keeps the planner from walking `resources_by_last_updated` in
    // order instead — on a database without statistics it does, and reads every row.
    let lookup = matches!(filters.first(), Some(Filter::Token { index, .. }) if SELECTIVE_INDEXES.contains(index));
    // A lookup's statement is prepared once per connection and kept (planning it was a third
    // of PostgreSQL's time per lookup). Only lookups of a few single values are kept: each
    // shape is one statement per connection, and any other search could make new shapes
    // without end.
    let cached =
        lookup && filters.len() <= MAX_CACHED_FILTERS && filters.iter().all(|f| single_valued(f));
    let mut driving = true;
    let predicates: Vec<SqlPredicate> = filters
        .into_iter()
        .map(|f| match f {
            Filter::Token { index, values } if !driving => {
                let mut p = SqlPredicate::default();
                token_exists(&mut p, ty, *index, values);
                p
            }
            Filter::Token { .. } => {
                driving = false;
                predicate(ty, f, now_ms)
            }
            _ => predicate(ty, f, now_ms),
        })
        .map(|p| p.cached(cached))
        .collect();
    let build = || {
        let mut q = resources::table
            .into_boxed::<DbBackend>()
            .filter(resources::resource_type.eq(ty.to_string()))
            .filter(resources::deleted.eq(false));
        for p in &predicates {
            q = q.filter(p.clone());
        }
        q
    };
    let mut organizations = Vec::new();
    let rows = if req.count == 0 {
        Vec::new()
    } else {
        // Newest first unless `_sort` says otherwise. A lookup orders by an expression (see
        // above); the few rows it matches are sorted in memory whatever the key.
        let last_updated = if lookup {
            "+resources.last_updated"
        } else {
            "resources.last_updated"
        };
        let mut key = SqlExpression::<BigInt>::default();
        match req.sort.map(|s| s.key) {
            Some(SortKey::Date) => key
                .sql("(SELECT MIN(start_ms) FROM search_dates WHERE search_dates.resource_type = ")
                .text(ty)
                .sql(" AND search_dates.param = ")
                .text(Index::Date.name())
                .sql(" AND search_dates.resource_id = resources.id)"),
            Some(SortKey::LastUpdated) | None => key.sql(last_updated),
        };
        let key = key.cached(cached);
        let ascending = req.sort.is_some_and(|s| !s.descending);
        let limit = i64::try_from(req.count).unwrap_or(i64::MAX);
        let offset = i64::try_from(req.offset).unwrap_or(i64::MAX);
        if with_organizations {
            let page = PageWithOrganizations::new(ty, &predicates, &key, ascending, limit, offset);
            let (rows, named) = split_organizations(diesel::RunQueryDsl::load(page, conn)?);
            organizations = named;
            rows
        } else {
            let ordered = if ascending {
                build().order((key.asc(), resources::id.asc()))
            } else {
                build().order((key.desc(), resources::id.asc()))
            };
            ordered
                .limit(limit)
                .offset(offset)
                .select(ResourceRow::as_select())
                .load(conn)?
        }
    };
    // The count query is skipped when this page already holds every match.
    let total = if req.offset == 0 && rows.len() < req.count {
        rows.len() as i64
    } else {
        build().count().get_result(conn)?
    };
    Ok(Page {
        rows,
        total,
        organizations,
    })
}

/// A page of matches, each row joined (by primary keys: its `organization` token, the ODS
/// code's owner, that Organization) to the live Organization it names, if any. One LA's row
/// per match at most (an ODS code has one owner), so paging is the same as without it.
struct PageWithOrganizations<'a> {
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
struct MatchWithOrganization {
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
    fn new(
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
fn split_organizations(joined: Vec<MatchWithOrganization>) -> (Vec<ResourceRow>, Vec<ResourceRow>) {
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

fn predicate(ty: &str, filter: &Filter, now_ms: i64) -> SqlPredicate {
    let mut p = SqlPredicate::default();
    match filter {
        Filter::Token { index, values } => {
            token_ids(p.sql("resources.id IN ("), ty, *index, values).sql(")")
        }
        Filter::NotToken { index, values } => {
            // A correlated NOT EXISTS probes the primary key per candidate row, instead of
            // materialising every excluded id first.
            p.sql("NOT ");
            token_exists(&mut p, ty, *index, values)
        }
        Filter::Date {
            index,
            prefix,
            lo,
            hi,
        } => {
            p.sql("resources.id IN (SELECT resource_id FROM search_dates WHERE resource_type = ")
                .text(ty)
                .sql(" AND param = ")
                .text(index.name())
                .sql(" AND ");
            range(&mut p, *prefix, *lo, *hi, "start_ms", "end_ms").sql(")")
        }
        Filter::LastUpdated { prefix, lo, hi } => {
            // An instant is the range [t, t + 1).
            range(
                &mut p,
                *prefix,
                *lo,
                *hi,
                "resources.last_updated",
                "(resources.last_updated + 1)",
            )
        }
        Filter::StartsWith { index, value } => p
            .sql("resources.id IN (SELECT resource_id FROM search_tokens WHERE resource_type = ")
            .text(ty)
            .sql(" AND param = ")
            .text(index.name())
            .sql(" AND value LIKE ")
            .text(&format!("{}%", escape_like(value)))
            .sql(" ESCAPE '\\')"),
        Filter::FlagStatus(statuses) => {
            p.sql("(");
            for (i, s) in statuses.iter().enumerate() {
                if i > 0 {
                    p.sql(" OR ");
                }
                flag_status(&mut p, ty, *s, now_ms);
            }
            if statuses.is_empty() {
                p.sql("1 = 1");
            }
            p.sql(")")
        }
        Filter::Ids(ids) => {
            p.sql("resources.id IN (");
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    p.sql(", ");
                }
                p.text(id);
            }
            if ids.is_empty() {
                p.sql("NULL");
            }
            p.sql(")")
        }
    };
    p
}

/// A Flag is `active` today when its plan is active and today (in England) lies within its
/// period; `inactive` when it is neither active today nor entered in error. The period index
/// holds days as the UTC midnight that begins them, so today is compared as one too.
fn flag_status(p: &mut SqlPredicate, ty: &str, status: FlagStatus, now_ms: i64) {
    let today = DayPeriod::today_ms(uk_date(now_ms));
    let stored = |value: &str| {
        vec![TokenValue {
            system: None,
            value: value.to_string(),
        }]
    };
    let active = |p: &mut SqlPredicate| {
        token_ids(
            p.sql("(resources.id IN ("),
            ty,
            Index::StoredStatus,
            &stored("active"),
        )
        .sql(") AND resources.id IN (SELECT resource_id FROM search_dates WHERE resource_type = ")
        .text(ty)
        .sql(" AND param = ")
        .text(Index::Period.name())
        .sql(" AND ")
        .sql(IN_FORCE_FROM)
        .big_int(today)
        .sql(IN_FORCE_UNTIL)
        .big_int(today)
        .sql("))");
    };
    match status {
        FlagStatus::Active => active(p),
        FlagStatus::EnteredInError => {
            token_ids(
                p.sql("resources.id IN ("),
                ty,
                Index::StoredStatus,
                &stored("entered-in-error"),
            )
            .sql(")");
        }
        FlagStatus::Inactive => {
            token_ids(
                p.sql("(resources.id NOT IN ("),
                ty,
                Index::StoredStatus,
                &stored("entered-in-error"),
            )
            .sql(") AND NOT ");
            active(p);
            p.sql(")");
        }
    }
}

/// `EXISTS (…)`: this row has an index entry matching any of `values`, probed by this row's
/// entries (`search_tokens_of_resource` on SQLite, the primary key on PostgreSQL).
/// `value || ''` keeps the planner from probing by value (every row with that value)
/// instead, which it would on a database without statistics.
fn token_exists<'a>(
    p: &'a mut SqlPredicate,
    ty: &str,
    index: Index,
    values: &[TokenValue],
) -> &'a mut SqlPredicate {
    p.sql("EXISTS (SELECT 1 FROM search_tokens WHERE resource_type = ")
        .text(ty)
        .sql(" AND resource_id = resources.id AND param = ")
        .text(index.name())
        .sql(" AND (");
    token_values(p, values, "(value || '') = ").sql("))")
}

/// `SELECT resource_id FROM search_tokens WHERE …` matching any of `values`.
fn token_ids<'a>(
    p: &'a mut SqlPredicate,
    ty: &str,
    index: Index,
    values: &[TokenValue],
) -> &'a mut SqlPredicate {
    p.sql("SELECT resource_id FROM search_tokens WHERE resource_type = ")
        .text(ty)
        .sql(" AND param = ")
        .text(index.name())
        .sql(" AND (");
    token_values(p, values, "value = ").sql(")")
}

/// `(value = ? [AND system = ?]) OR …`, or a false condition when `values` is empty.
fn token_values<'a>(
    p: &'a mut SqlPredicate,
    values: &[TokenValue],
    value_equals: &'static str,
) -> &'a mut SqlPredicate {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            p.sql(" OR ");
        }
        p.sql("(").sql(value_equals).text(&v.value);
        if let Some(system) = &v.system {
            p.sql(" AND system = ").text(system);
        }
        p.sql(")");
    }
    if values.is_empty() {
        p.sql("1 = 0");
    }
    p
}

/// FHIR prefix semantics for a target range `[start, end)` against a search range `[lo, hi)`.
fn range<'a>(
    p: &'a mut SqlPredicate,
    prefix: DatePrefix,
    lo: i64,
    hi: i64,
    start: &'static str,
    end: &'static str,
) -> &'a mut SqlPredicate {
    let cmp = |p: &'a mut SqlPredicate,
               col: &'static str,
               op: &'static str,
               v: i64|
     -> &'a mut SqlPredicate { p.sql(col).sql(op).big_int(v) };
    match prefix {
        DatePrefix::Eq => cmp(
            cmp(p.sql("("), start, " >= ", lo).sql(" AND "),
            end,
            " <= ",
            hi,
        )
        .sql(")"),
        DatePrefix::Ne => cmp(
            cmp(p.sql("("), start, " < ", lo).sql(" OR "),
            end,
            " > ",
            hi,
        )
        .sql(")"),
        DatePrefix::Gt => cmp(p, end, " > ", hi),
        DatePrefix::Ge => cmp(p, end, " > ", lo),
        DatePrefix::Lt => cmp(p, start, " < ", lo),
        DatePrefix::Le => cmp(p, start, " < ", hi),
        DatePrefix::Sa => cmp(p, start, " >= ", hi),
        DatePrefix::Eb => cmp(p, end, " <= ", lo),
    }
}

/// A lookup with more filters than this is not kept as a prepared statement.
const MAX_CACHED_FILTERS: usize = 3;

/// Whether a filter names one value (its statement's shape does not grow with the request).
fn single_valued(filter: &Filter) -> bool {
    match filter {
        Filter::Token { values, .. } | Filter::NotToken { values, .. } => values.len() == 1,
        Filter::FlagStatus(statuses) => statuses.len() == 1,
        Filter::Ids(ids) => ids.len() == 1,
        Filter::Date { .. } | Filter::LastUpdated { .. } | Filter::StartsWith { .. } => true,
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// An SQL expression of type `ST` built from fixed SQL text and bound values (a `RawStatement`
/// used as an expression). The text comes only from this module's literals; every value from a
/// request is a bind parameter. It is kept as a prepared statement only when marked `cached`.
#[derive(Debug, Clone)]
pub struct SqlExpression<ST> {
    raw: RawStatement,
    cached: bool,
    sql_type: PhantomData<ST>,
}

/// A WHERE condition.
pub type SqlPredicate = SqlExpression<Bool>;

impl<ST> Default for SqlExpression<ST> {
    fn default() -> Self {
        SqlExpression {
            raw: RawStatement::default(),
            cached: false,
            sql_type: PhantomData,
        }
    }
}

impl<ST> SqlExpression<ST> {
    fn sql(&mut self, s: &'static str) -> &mut Self {
        self.raw.sql(s);
        self
    }
    fn text(&mut self, v: &str) -> &mut Self {
        self.raw.text(v);
        self
    }
    fn big_int(&mut self, v: i64) -> &mut Self {
        self.raw.big_int(v);
        self
    }
    fn cached(mut self, cached: bool) -> Self {
        self.cached = cached;
        self
    }
}

impl<ST: SqlType + diesel::expression::TypedExpressionType> Expression for SqlExpression<ST> {
    type SqlType = ST;
}
impl<ST, QS> AppearsOnTable<QS> for SqlExpression<ST> where SqlExpression<ST>: Expression {}
impl<ST, QS> SelectableExpression<QS> for SqlExpression<ST> where SqlExpression<ST>: Expression {}
impl<ST> ValidGrouping<()> for SqlExpression<ST> {
    type IsAggregate = is_aggregate::Never;
}
impl<ST> QueryId for SqlExpression<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST, DB> QueryFragment<DB> for SqlExpression<ST>
where
    DB: Backend,
    RawStatement: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cached {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql("(");
        self.raw.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}
