//! Each search filter as an SQL condition over the index tables: `id IN (SELECT resource_id
//! FROM search_… WHERE …)` served by their keys, or a correlated `EXISTS` probe.

use super::expression::SqlPredicate;
use crate::clock::uk_date;
use crate::fhir::index::Index;
use crate::fhir::period::{DayPeriod, IN_FORCE_FROM, IN_FORCE_UNTIL};
use crate::search::parse::{DatePrefix, Filter, FlagStatus, TokenValue};

pub(super) fn predicate(ty: &str, filter: &Filter, now_ms: i64) -> SqlPredicate {
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
pub(super) fn token_exists<'a>(
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
pub(super) const MAX_CACHED_FILTERS: usize = 3;

/// Whether a filter names one value (its statement's shape does not grow with the request).
pub(super) fn single_valued(filter: &Filter) -> bool {
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
