//! `SqlExpression`: SQL text from this module's literals and typed binds, used as a diesel
//! expression (a WHERE condition, an ORDER BY key).

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, SqlType};
use diesel::QueryResult;
use std::marker::PhantomData;

use crate::db::raw::RawStatement;

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
    pub(super) fn sql(&mut self, s: &'static str) -> &mut Self {
        self.raw.sql(s);
        self
    }
    pub(super) fn text(&mut self, v: &str) -> &mut Self {
        self.raw.text(v);
        self
    }
    pub(super) fn big_int(&mut self, v: i64) -> &mut Self {
        self.raw.big_int(v);
        self
    }
    pub(super) fn cached(mut self, cached: bool) -> Self {
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
