//! Planner settings: when PostgreSQL keeps a statement's plan and when it plans for the values,
//! and the statistics the planners are given at start.

use diesel::prelude::*;

use super::checkpoint::maintenance_write;
use super::DbConn;

/// For the audit writer's own connection, which writes continuously.
///
/// On SQLite, it no longer checkpoints at its own commits — `start_checkpointer` does that
/// beside it, so no commit waits for a checkpoint. On PostgreSQL, see `plan_audit_statements`
/// (whose answer this returns).
pub fn configure_audit_writer(conn: &mut DbConn) -> QueryResult<bool> {
    if let DbConn::Sqlite(c) = conn {
        // Statement journals in memory (the batches are small): each multi-row insert inside
        // the batch's transaction otherwise spilt its journal to a new file in the temporary
        // directory, created and unlinked again, about a hundred times a second.
        diesel::connection::SimpleConnection::batch_execute(
            c,
            "PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY",
        )?;
    }
    plan_audit_statements(conn)
}

/// Rows in each audit table (`audit_events`, `audit_las`), as PostgreSQL's statistics estimate
/// them, from which the audit writer's statements keep the plans PostgreSQL settles on.
const AUDIT_ROWS_FOR_KEPT_PLANS: f32 = 10_000.0;

#[derive(diesel::QueryableByName)]
struct RowEstimate {
    #[diesel(sql_type = diesel::sql_types::Float)]
    rows: f32,
}

/// Whether the audit writer's statements keep their plans (true), or are planned afresh at every
/// execution until the statistics describe audit tables of some size (false: ask again later).
///
/// They are prepared once and kept, and PostgreSQL settles on a generic plan after five runs:
/// one made from a new database's statistics of empty tables, a sequential scan, was kept
/// while they grew by thousands of rows a second (audited lookups at a fifth of the rate a
/// hand-run `ANALYZE` gave). Planning at every execution avoided that but cost 40% of the
/// writer's database time for ever. Once the tables are analysed at a real size, the generic
/// plans use the indexes (and a later `ANALYZE` replaces them), so the writer then keeps them
/// all: left to choose, PostgreSQL still planned the `= ANY($1)` reads afresh at nearly every
/// execution. The writer does not wait for autovacuum to analyse them (a minute or more after
/// they grew, on a new database): it analyses a table itself once it holds
/// `AUDIT_ROWS_FOR_KEPT_PLANS` rows its statistics do not know of yet
/// (`analyse_grown_audit_tables`). SQLite plans each statement as it prepares it: always true.
pub fn plan_audit_statements(conn: &mut DbConn) -> QueryResult<bool> {
    match conn {
        DbConn::Sqlite(_) => Ok(true),
        DbConn::Postgres(c) => {
            // A help, never a condition: an ANALYZE that fails (a lock it cannot get, say)
            // leaves the plans to autovacuum, as before. One on a table another role owns
            // only warns and changes nothing.
            if let Err(e) = analyse_grown_audit_tables(c) {
                tracing::warn!(error = %e, "analysing the audit tables failed");
            }
            let known: RowEstimate = diesel::sql_query(
                "SELECT min(reltuples) AS rows FROM pg_class \
                 WHERE oid IN ('audit_events'::regclass, 'audit_las'::regclass)",
            )
            .get_result(c)?;
            let settled = known.rows >= AUDIT_ROWS_FOR_KEPT_PLANS;
            diesel::connection::SimpleConnection::batch_execute(
                c,
                if settled {
                    "SET plan_cache_mode = force_generic_plan"
                } else {
                    "SET plan_cache_mode = force_custom_plan"
                },
            )?;
            Ok(settled)
        }
    }
}

#[derive(diesel::QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// `ANALYZE`s each audit table that holds `AUDIT_ROWS_FOR_KEPT_PLANS` rows (as the activity
/// statistics count them) while its planner statistics still say fewer. Measured on a new
/// database after 85,000 audited lookups that autovacuum had not yet analysed: audited
/// `patient` lookups +16% once analysed. Done once a table (afterwards its statistics know
/// it); the writer's batches wait for it, once: 72–90 ms for 13,000 accesses here.
fn analyse_grown_audit_tables(c: &mut diesel::PgConnection) -> QueryResult<()> {
    let grown: Vec<TableName> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c \
         JOIN pg_stat_user_tables s ON s.relid = c.oid \
         WHERE c.oid IN ('audit_events'::regclass, 'audit_las'::regclass) \
         AND c.reltuples < $1 AND s.n_live_tup >= $1",
    )
    .bind::<diesel::sql_types::Float, _>(AUDIT_ROWS_FOR_KEPT_PLANS)
    .load(c)?;
    for table in grown {
        // The names come from the two literals above, never from input.
        diesel::connection::SimpleConnection::batch_execute(c, &format!("ANALYZE {}", table.name))?;
    }
    Ok(())
}

/// Plans every statement of the current transaction for the values it is given (PostgreSQL;
/// nothing on SQLite, which plans each statement as it is prepared). A cached statement
/// otherwise settles on a generic plan made from its first executions: an upload's
/// `id = ANY($1)` reads, planned while the tables were empty, scanned them from then on
/// (PostgreSQL's time in `texteq` against every id of every row). Bulk work pays a little
/// planning per statement instead; lookups keep their cached plans.
pub fn plan_for_the_values(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(_) => Ok(()),
        DbConn::Postgres(c) => diesel::connection::SimpleConnection::batch_execute(
            c,
            "SET LOCAL plan_cache_mode = force_custom_plan",
        ),
    }
}

/// Gives the planner statistics at start, without anyone running `ANALYZE` by hand: on SQLite,
/// `PRAGMA optimize` analyses the tables that have none or have grown tenfold since. Only at
/// start: this SQLite gathers STAT4 samples, which reads whole indexes whatever
/// `analysis_limit` says, and run after uploads on a register of millions of accesses it held
/// every writer back for 5 to 8 s (the soak, issue #10). Nothing depends on it: the lookups and
/// the audit writer are shaped to use their indexes on a database never analysed
/// (`tests/api/query_plans.rs`). PostgreSQL's autovacuum analyses tables as they grow. A
/// failure is logged only.
pub fn refresh_statistics(conn: &mut DbConn) {
    let done = match conn {
        // ANALYZE writes (sqlite_stat1): housekeeping that gives way to the writers.
        DbConn::Sqlite(c) => maintenance_write(c, |c| {
            diesel::connection::SimpleConnection::batch_execute(
                c,
                "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;",
            )
        }),
        DbConn::Postgres(_) => Ok(()),
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, "refreshing planner statistics failed");
    }
}
