//! Running a checked upload: in parts (a batch) or whole (a transaction), each part's entries
//! folded into one transaction and, when one fails while being written, run again without it;
//! after a few such failures, one savepoint each.

use super::parse::in_entry;
use super::retry::{Attempts, Next, Stop};
use super::{Kind, Operation, Outcome, Upload};
use crate::auth::{Action, Caller};
use crate::db::{plan_for_the_values, write_transaction, DbConn, Nesting};
use crate::error::FhirError;
use crate::service::part::PartCache;
use crate::service::plan::{self, PlanWrites};

/// Runs an upload. A transaction Bundle is one database transaction: meeting a failing entry,
/// it writes nothing and returns that entry's error. A batch commits every
/// `batch_entries_per_commit` entries. Entries run folded into the transaction, without
/// savepoints (they cost more than the writes, `PlanWrites::bulk`); when one fails while being
/// written, the attempt is rolled back and run again without it. After a few such failures the
/// rest of that part run one savepoint each.
///
/// `finish` runs in a database transaction once the outcomes are known (for a transaction, the
/// same one; to keep the report with the plans it reports on), and its result is returned.
pub fn execute<R>(
    conn: &mut DbConn,
    caller: &Caller,
    upload: &Upload,
    now: i64,
    finish: impl Fn(&mut DbConn, &[Outcome]) -> Result<R, FhirError>,
) -> Result<R, FhirError> {
    caller.require(Action::WritePlan)?;
    if upload.kind == Kind::Transaction {
        if let Some((i, Err(_))) = upload.entries.iter().enumerate().find(|(_, e)| e.is_err()) {
            return Err(transaction_failure(upload, i));
        }
    }
    run_all(conn, &mut PlanWrites::bulk(caller, now), upload, finish)
}

/// The most batch entries written in one database transaction: a large batch upload commits
/// in parts, so that audited lookups (which commit before they answer) do not wait long behind
/// it. On SQLite, whose one write lock every writer takes in turn, a part holds the audit
/// writer back for as long as it takes (~15 ms at 50 entries; at 250, lookups' p99 during a
/// daily upload was 8× the quiet one): while audited lookups are under way, parts are of 10
/// (the audit writer goes ahead of the next part, but waits for the one in progress). On an
/// idle server, 50 keep the upload's own pace. PostgreSQL locks rows, and pays a WAL flush per
/// commit. A transaction Bundle is all or nothing, so it is one transaction however large
/// (bounded by `CPIS_MAX_BUNDLE_ENTRIES`).
fn batch_entries_per_commit(conn: &DbConn) -> usize {
    match conn {
        DbConn::Sqlite(_) if crate::audit::accesses_being_recorded() => 10,
        DbConn::Sqlite(_) => 50,
        DbConn::Postgres(_) => 250,
    }
}

/// While audited lookups are being recorded, an upload writes at most a third of the time:
/// after each part it waits `PAUSE_PER_PART` times as long as the part took. Without a pause
/// its parts, back to back, took more than half of the machine from the lookups (on SQLite
/// 0.42 of their quiet throughput during a first 100,000-plan upload, issue #31); waiting as
/// long as each part took left them 0.46–0.54. A lower priority does not do it: on SQLite the
/// writing keeps normal priority (a low-priority holder of the one write lock would hold the
/// audit writer up), and on PostgreSQL most of the work is done by the database's own
/// backend, which the background thread's priority does not reach.
fn give_way_to_lookups(part_took: std::time::Duration) {
    if crate::audit::accesses_being_recorded() {
        std::thread::sleep(part_took * PAUSE_PER_PART);
    }
}

/// How many times as long as a part took an upload waits after it while lookups are recorded.
const PAUSE_PER_PART: u32 = 2;

fn run_all<R>(
    conn: &mut DbConn,
    writes: &mut PlanWrites<'_>,
    upload: &Upload,
    finish: impl Fn(&mut DbConn, &[Outcome]) -> Result<R, FhirError>,
) -> Result<R, FhirError> {
    let mut failed: Vec<Option<FhirError>> = upload
        .entries
        .iter()
        .map(|e| e.as_ref().err().map(copy))
        .collect();
    let all = 0..upload.entries.len();
    match upload.kind {
        Kind::Transaction => run_range(conn, writes, upload, all, &mut failed, |conn, o| {
            finish(conn, &o)
        }),
        Kind::Batch => {
            let mut outcomes = Vec::with_capacity(upload.entries.len());
            let mut start = all.start;
            while start < all.end {
                // Sized part by part: lookups may begin or end during an upload.
                let part = start..(start + batch_entries_per_commit(conn)).min(all.end);
                start = part.end;
                let began = std::time::Instant::now();
                outcomes.extend(run_range(
                    conn,
                    writes,
                    upload,
                    part,
                    &mut failed,
                    |_, o| Ok(o),
                )?);
                give_way_to_lookups(began.elapsed());
            }
            write_transaction(conn, |conn| finish(conn, &outcomes))
        }
    }
}

/// Runs the entries in `range` in one database transaction, then `finish` in it with their
/// outcomes. A transaction stops at the first failing entry. A batch runs its entries without
/// savepoints (they cost more than the writes); when one fails while being written, the attempt
/// is rolled back and run again without it — or, when it lost a race for its identifier to
/// another upload, with it once more (it then finds the winner's plan). After a few such
/// failures the rest run one savepoint each (`Attempts` decides which).
fn run_range<R>(
    conn: &mut DbConn,
    writes: &mut PlanWrites<'_>,
    upload: &Upload,
    range: std::ops::Range<usize>,
    failed: &mut [Option<FhirError>],
    finish: impl Fn(&mut DbConn, Vec<Outcome>) -> Result<R, FhirError>,
) -> Result<R, FhirError> {
    let mut attempts = Attempts::new();
    loop {
        let stop = match attempt_folded(conn, writes, upload, &range, failed, &attempts, &finish) {
            Ok(result) => return Ok(result),
            Err(stop) => stop,
        };
        let lost_a_race = |i: usize, e: &FhirError| lost_a_race(upload, i, e);
        match attempts.after(stop, upload.kind, lost_a_race, failed) {
            Next::Again => {}
            Next::OneSavepointEach => break,
            Next::Fail(e) => return Err(e),
        }
    }
    run_each_in_a_savepoint(conn, writes, upload, &range, failed, &finish)
}

/// One attempt at the part: every entry still to run folded into one transaction, the part's
/// new plans written together unless `attempts` says entry by entry, then `finish`.
fn attempt_folded<R>(
    conn: &mut DbConn,
    writes: &mut PlanWrites<'_>,
    upload: &Upload,
    range: &std::ops::Range<usize>,
    failed: &[Option<FhirError>],
    attempts: &Attempts,
    finish: &impl Fn(&mut DbConn, Vec<Outcome>) -> Result<R, FhirError>,
) -> Result<R, Stop> {
    writes.nesting = Nesting::Folded;
    let attempt = write_transaction(conn, |conn| {
        plan_for_the_values(conn)?;
        if !attempts.entry_by_entry {
            let named = identifiers_named(upload, range, failed);
            writes.part = Some(PartCache::load(conn, named)?);
        }
        let mut written = Vec::with_capacity(range.len());
        for i in range.clone() {
            match (
                upload.entries.get(i),
                failed.get(i).and_then(Option::as_ref),
            ) {
                (Some(Ok(op)), None) => written.push(Some(
                    run(conn, writes, op).map_err(|e| Stop::Entry(i, in_entry(i, e)))?,
                )),
                _ => written.push(None),
            }
        }
        if let Some(mut part) = writes.part.take() {
            part.flush(conn).map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => Stop::Together,
                other => Stop::Database(other),
            })?;
        }
        let outcomes = merge(written, failures(failed, range));
        finish(conn, outcomes).map_err(Stop::Finish)
    });
    writes.part = None;
    attempt
}

/// The part's entries still to run, one savepoint each: one that fails is undone alone and
/// recorded in `failed`.
fn run_each_in_a_savepoint<R>(
    conn: &mut DbConn,
    writes: &mut PlanWrites<'_>,
    upload: &Upload,
    range: &std::ops::Range<usize>,
    failed: &mut [Option<FhirError>],
    finish: &impl Fn(&mut DbConn, Vec<Outcome>) -> Result<R, FhirError>,
) -> Result<R, FhirError> {
    writes.nesting = Nesting::Savepoint;
    write_transaction(conn, |conn| {
        let mut written = Vec::with_capacity(range.len());
        for i in range.clone() {
            match (
                upload.entries.get(i),
                failed.get(i).and_then(Option::as_ref),
            ) {
                (Some(Ok(op)), None) => match run(conn, writes, op) {
                    Ok(done) => written.push(Some(done)),
                    Err(e) => {
                        if let Some(slot) = failed.get_mut(i) {
                            *slot = Some(in_entry(i, e));
                        }
                        written.push(None);
                    }
                },
                _ => written.push(None),
            }
        }
        let outcomes = merge(written, failures(failed, range));
        finish(conn, outcomes)
    })
}

/// The plan identifiers the entries in `range` that are still to run name (what their part
/// reads in one go).
fn identifiers_named(
    upload: &Upload,
    range: &std::ops::Range<usize>,
    failed: &[Option<FhirError>],
) -> Vec<(String, String)> {
    let mut named = Vec::with_capacity(range.len());
    for i in range.clone() {
        if failed.get(i).is_some_and(Option::is_some) {
            continue;
        }
        match upload.entries.get(i) {
            Some(Ok(Operation::Create {
                input,
                if_none_exist,
            })) => {
                named.extend(if_none_exist.clone());
                named.push((
                    input.plan.identifier_system.clone(),
                    input.plan.identifier_value.clone(),
                ));
            }
            Some(Ok(Operation::Upsert { identifier, .. } | Operation::Delete { identifier })) => {
                named.push(identifier.clone())
            }
            _ => {}
        }
    }
    named.sort_unstable();
    named.dedup();
    named
}

/// The failures so far of the entries in `range`.
fn failures(
    failed: &[Option<FhirError>],
    range: &std::ops::Range<usize>,
) -> Vec<Option<FhirError>> {
    failed
        .get(range.clone())
        .unwrap_or_default()
        .iter()
        .map(|f| f.as_ref().map(copy))
        .collect()
}

/// Whether entry `i` failed only because another writer claimed its identifier first: a
/// conditional write (an upsert, or a create with `ifNoneExist`) that meets a unique-key
/// conflict. Run again, it finds that writer's plan.
fn lost_a_race(upload: &Upload, i: usize, error: &FhirError) -> bool {
    let conditional = matches!(
        upload.entries.get(i),
        Some(Ok(Operation::Upsert { .. }
            | Operation::Create {
                if_none_exist: Some(_),
                ..
            }))
    );
    conditional && matches!(error, FhirError::InEntry { status: 409, .. })
}

/// Each entry's outcome: what it wrote, else why it failed.
fn merge(written: Vec<Option<Outcome>>, failed: Vec<Option<FhirError>>) -> Vec<Outcome> {
    written
        .into_iter()
        .zip(failed)
        .map(|(done, failure)| match (done, failure) {
            (Some(done), _) => done,
            (None, Some(e)) => Outcome::Failed(e),
            (None, None) => Outcome::Failed(FhirError::internal("an entry was not run")),
        })
        .collect()
}

/// Every checked-out failure of a transaction in one OperationOutcome (status of the first).
fn transaction_failure(upload: &Upload, first: usize) -> FhirError {
    use actix_web::ResponseError;
    let status = upload
        .entries
        .get(first)
        .and_then(|e| e.as_ref().err())
        .map_or(400, |e| e.status_code().as_u16());
    let issues = upload
        .entries
        .iter()
        .filter_map(|e| e.as_ref().err())
        .flat_map(FhirError::issues)
        .collect();
    FhirError::InEntry { status, issues }
}

fn copy(e: &FhirError) -> FhirError {
    use actix_web::ResponseError;
    FhirError::InEntry {
        status: e.status_code().as_u16(),
        issues: e.issues(),
    }
}

fn run(
    conn: &mut DbConn,
    writes: &mut PlanWrites<'_>,
    op: &Operation,
) -> Result<Outcome, FhirError> {
    match op {
        Operation::Create {
            input,
            if_none_exist,
        } => plan::create(conn, writes, input, if_none_exist.as_ref()).map(Outcome::Written),
        Operation::Upsert {
            identifier,
            input,
            if_match,
        } => plan::upsert(conn, writes, identifier, input, *if_match).map(Outcome::Written),
        Operation::Delete { identifier } => plan::delete_by_identifier(conn, writes, identifier)
            .map(|deleted| {
                if deleted {
                    Outcome::Deleted
                } else {
                    Outcome::NothingToDelete
                }
            }),
    }
}
