//! `RawStatement`: a statement built from fixed SQL text and typed bind values, for what the
//! diesel DSL cannot say through `MultiBackend` (a multi-row INSERT). The text comes only from
//! this crate's literals; every value is a bind parameter, so each placeholder is right for its
//! engine (`?` on SQLite, `$n` on PostgreSQL).

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text};
use diesel::QueryResult;

#[derive(Debug, Clone)]
enum Part {
    Sql(&'static str),
    Text(String),
    BigInt(i64),
    Bool(bool),
    OptText(Option<String>),
    OptBigInt(Option<i64>),
    OptBool(Option<bool>),
}

#[derive(Debug, Clone, Default)]
pub struct RawStatement {
    parts: Vec<Part>,
}

impl RawStatement {
    pub fn sql(&mut self, s: &'static str) -> &mut Self {
        self.parts.push(Part::Sql(s));
        self
    }
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.parts.push(Part::Text(v.to_string()));
        self
    }
    pub fn big_int(&mut self, v: i64) -> &mut Self {
        self.parts.push(Part::BigInt(v));
        self
    }
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.parts.push(Part::Bool(v));
        self
    }
    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        self.parts.push(Part::OptText(v.map(str::to_string)));
        self
    }
    pub fn opt_big_int(&mut self, v: Option<i64>) -> &mut Self {
        self.parts.push(Part::OptBigInt(v));
        self
    }
    pub fn opt_boolean(&mut self, v: Option<bool>) -> &mut Self {
        self.parts.push(Part::OptBool(v));
        self
    }
}

impl QueryId for RawStatement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for RawStatement
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt> + HasSqlType<Bool>,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    bool: ToSql<Bool, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    Option<bool>: ToSql<Nullable<Bool>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(s) => out.push_sql(s),
                Part::Text(t) => out.push_bind_param::<Text, String>(t)?,
                Part::BigInt(i) => out.push_bind_param::<BigInt, i64>(i)?,
                Part::Bool(b) => out.push_bind_param::<Bool, bool>(b)?,
                Part::OptText(t) => out.push_bind_param::<Nullable<Text>, Option<String>>(t)?,
                Part::OptBigInt(i) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(i)?,
                Part::OptBool(b) => out.push_bind_param::<Nullable<Bool>, Option<bool>>(b)?,
            }
        }
        Ok(())
    }
}

impl<Conn> diesel::RunQueryDsl<Conn> for RawStatement {}

/// The most rows one multi-row statement carries: well inside both engines' limits on bind
/// parameters (SQLite 32,766, PostgreSQL 65,535) for the widest row written this way.
pub const ROWS_PER_STATEMENT: usize = 256;

/// The values of one row of a multi-row statement, comma-separated as they are added.
pub struct RowValues<'s> {
    statement: &'s mut RawStatement,
    first: bool,
}

impl RowValues<'_> {
    fn next(&mut self) -> &mut RawStatement {
        if !std::mem::take(&mut self.first) {
            self.statement.sql(", ");
        }
        self.statement
    }
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.next().text(v);
        self
    }
    pub fn big_int(&mut self, v: i64) -> &mut Self {
        self.next().big_int(v);
        self
    }
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.next().boolean(v);
        self
    }
    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        self.next().opt_text(v);
        self
    }
    pub fn opt_big_int(&mut self, v: Option<i64>) -> &mut Self {
        self.next().opt_big_int(v);
        self
    }
    pub fn opt_boolean(&mut self, v: Option<bool>) -> &mut Self {
        self.next().opt_boolean(v);
        self
    }
}

/// Runs `head (…), (…) tail` for `items`, `ROWS_PER_STATEMENT` rows a statement: `head` ends
/// where the rows begin (`INSERT INTO t (a, b) VALUES `), `row` adds one item's values.
pub fn insert_rows<T>(
    conn: &mut super::DbConn,
    head: &'static str,
    tail: &'static str,
    items: &[T],
    row: impl Fn(&mut RowValues<'_>, &T),
) -> QueryResult<()> {
    use diesel::RunQueryDsl;
    for chunk in items.chunks(ROWS_PER_STATEMENT) {
        let mut statement = RawStatement::default();
        statement.sql(head);
        values(&mut statement, chunk, &row);
        statement.sql(tail);
        statement.execute(conn)?;
    }
    Ok(())
}

/// Adds `(…), (…)`: one parenthesised row of values for each of `items`.
pub fn values<T>(statement: &mut RawStatement, items: &[T], row: impl Fn(&mut RowValues<'_>, &T)) {
    for (i, item) in items.iter().enumerate() {
        statement.sql(if i == 0 { "(" } else { ", (" });
        row(
            &mut RowValues {
                statement: &mut *statement,
                first: true,
            },
            item,
        );
        statement.sql(")");
    }
}
