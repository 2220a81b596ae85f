//! Runs a parsed search as one query over `resources` and the index tables: each filter is an
//! `id IN (SELECT resource_id FROM search_… WHERE …)` served by the index tables' keys.
//!
//! Predicates are built as `SqlPredicate`s (SQL text with typed binds) rather than diesel DSL
//! subselects: `MultiBackend` cannot box a subselect, and this keeps each placeholder correct
//! for its engine (`?` on SQLite, `$n` on PostgreSQL). Only portable SQL is written here.

mod expression;
mod organizations;
mod predicates;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::models::ResourceRow;
use crate::db::schema::resources;
use crate::db::{DbBackend, DbConn};
use crate::fhir::index::Index;
use crate::search::params::SortKey;
use crate::search::parse::{Filter, SearchRequest};

pub use expression::{SqlExpression, SqlPredicate};
use organizations::{split_organizations, PageWithOrganizations};
use predicates::{predicate, single_valued, token_exists, MAX_CACHED_FILTERS};

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
    let conditions = Conditions::of(req, extra, now_ms);
    let (rows, organizations) = if req.count == 0 {
        (Vec::new(), Vec::new())
    } else {
        page(conn, req, &conditions, with_organizations)?
    };
    // The count query is skipped when this page already holds every match.
    let total = if req.offset == 0 && rows.len() < req.count {
        rows.len() as i64
    } else {
        conditions.query().count().get_result(conn)?
    };
    Ok(Page {
        rows,
        total,
        organizations,
    })
}

/// A search's conditions, in the order they narrow the matches.
struct Conditions<'a> {
    ty: &'a str,
    predicates: Vec<SqlPredicate>,
    /// One NHS number or plan reference drives the query (see `Conditions::of`).
    lookup: bool,
    /// Its statement is kept prepared.
    cached: bool,
}

impl<'a> Conditions<'a> {
    fn of(req: &'a SearchRequest, extra: &[Filter], now_ms: i64) -> Conditions<'a> {
        let ty = req.ty.as_str();
        // Token filters in the order they narrow the matches: one child's or one plan's entries
        // first. The first drives the query as an `IN` over the index; later ones (e.g. the
        // caller's LA) are probed per candidate with `EXISTS`, rather than materialising every
        // id the LA owns.
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
        // A lookup's statement is prepared once per connection and kept (planning it was a
        // third of PostgreSQL's time per lookup). Only lookups of a few single values are
        // kept: each shape is one statement per connection, and any other search could make
        // new shapes without end.
        let cached = lookup
            && filters.len() <= MAX_CACHED_FILTERS
            && filters.iter().all(|f| single_valued(f));
        let mut driving = true;
        let predicates = filters
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
        Conditions {
            ty,
            predicates,
            lookup,
            cached,
        }
    }

    /// The matches, unordered.
    fn query(&self) -> resources::BoxedQuery<'_, DbBackend> {
        let mut q = resources::table
            .into_boxed::<DbBackend>()
            .filter(resources::resource_type.eq(self.ty.to_string()))
            .filter(resources::deleted.eq(false));
        for p in &self.predicates {
            q = q.filter(p.clone());
        }
        q
    }

    /// The key matches are ordered by: newest first unless `_sort` says otherwise. A lookup
    /// orders by an expression (see `of`); the few rows it matches are sorted in memory
    /// whatever the key.
    fn order_key(&self, req: &SearchRequest) -> SqlExpression<BigInt> {
        let mut key = SqlExpression::<BigInt>::default();
        match req.sort.map(|s| s.key) {
            Some(SortKey::Date) => key
                .sql("(SELECT MIN(start_ms) FROM search_dates WHERE search_dates.resource_type = ")
                .text(self.ty)
                .sql(" AND search_dates.param = ")
                .text(Index::Date.name())
                .sql(" AND search_dates.resource_id = resources.id)"),
            Some(SortKey::LastUpdated) | None if self.lookup => key.sql("+resources.last_updated"),
            Some(SortKey::LastUpdated) | None => key.sql("resources.last_updated"),
        };
        key.cached(self.cached)
    }
}

/// The page `req` asks for, and the Organizations its matches name when asked for.
fn page(
    conn: &mut DbConn,
    req: &SearchRequest,
    conditions: &Conditions<'_>,
    with_organizations: bool,
) -> QueryResult<(Vec<ResourceRow>, Vec<ResourceRow>)> {
    let key = conditions.order_key(req);
    let ascending = req.sort.is_some_and(|s| !s.descending);
    let limit = i64::try_from(req.count).unwrap_or(i64::MAX);
    let offset = i64::try_from(req.offset).unwrap_or(i64::MAX);
    if with_organizations {
        let page = PageWithOrganizations::new(
            conditions.ty,
            &conditions.predicates,
            &key,
            ascending,
            limit,
            offset,
        );
        return Ok(split_organizations(diesel::RunQueryDsl::load(page, conn)?));
    }
    let ordered = if ascending {
        conditions.query().order((key.asc(), resources::id.asc()))
    } else {
        conditions.query().order((key.desc(), resources::id.asc()))
    };
    let rows = ordered
        .limit(limit)
        .offset(offset)
        .select(ResourceRow::as_select())
        .load(conn)?;
    Ok((rows, Vec::new()))
}
