//! LA uploads (SPEC §3 Bundle): `transaction` (all or nothing) and `batch` (each entry on its
//! own) Bundles of EpisodeOfCare entries — `POST EpisodeOfCare`, conditional
//! `PUT EpisodeOfCare?identifier=system|value` (the idempotent daily upsert) and conditional
//! `DELETE EpisodeOfCare?identifier=…`.
//!
//! Every entry is checked before anything is written (`execute` says how they then run). A
//! transaction stops at the first failure and rolls everything back; a batch keeps the entries
//! that succeeded. Errors name their entry (`Bundle.entry[3].resource.period.start`).

use serde_json::{json, Value};

use super::part::PartCache;
use super::plan::{self, PlanInput, PlanWrites};
use super::{conditional_identifier, Written};
use crate::auth::{Action, Caller};
use crate::db::reports::{self, ReportRow};
use crate::db::{plan_for_the_values, write_transaction, DbConn, Nesting};
use crate::error::{operation_outcome, FhirError, Issue, SpineCode};
use crate::fhir::types::{instant, PROFILE_BASE};
use crate::fhir::ResourceType;
use crate::validation::Profiles;

const PLAN_TYPE: &str = "EpisodeOfCare";
pub const ACCEPTED_URL: &str = "https://fhir.cpis.example.org/StructureDefinition/upload-accepted";
pub const REJECTED_URL: &str = "https://fhir.cpis.example.org/StructureDefinition/upload-rejected";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Transaction,
    Batch,
}

/// What one entry asks for.
#[derive(Debug, Clone)]
pub enum Operation {
    Create {
        input: PlanInput,
        if_none_exist: Option<(String, String)>,
    },
    Upsert {
        identifier: (String, String),
        input: PlanInput,
        if_match: Option<i64>,
    },
    Delete {
        identifier: (String, String),
    },
}

/// A parsed upload: each entry is ready to run, or already failed its checks.
pub struct Upload {
    pub kind: Kind,
    pub entries: Vec<Result<Operation, FhirError>>,
}

/// What happened to one entry.
pub enum Outcome {
    Written(Written),
    Deleted,
    NothingToDelete,
    Failed(FhirError),
}

/// The prefix an entry's issues are named under.
fn entry_path(index: usize) -> String {
    format!("Bundle.entry[{index}]")
}

/// The same error (and status) with every issue at `expression`.
fn at(expression: &str, error: FhirError) -> FhirError {
    use actix_web::ResponseError;
    FhirError::InEntry {
        status: error.status_code().as_u16(),
        issues: error
            .issues()
            .into_iter()
            .map(|mut i| {
                i.expression = Some(expression.into());
                i
            })
            .collect(),
    }
}

/// Re-roots an error's issues at entry `index`: `EpisodeOfCare.period.start` becomes
/// `Bundle.entry[3].resource.period.start`; an issue without an element names the entry.
pub fn in_entry(index: usize, error: FhirError) -> FhirError {
    use actix_web::ResponseError;
    let status = error.status_code().as_u16();
    let entry = entry_path(index);
    let issues = error
        .issues()
        .into_iter()
        .map(|mut issue| {
            issue.expression = Some(match issue.expression.as_deref() {
                Some(e) if e.starts_with("Bundle.entry[") => e.to_string(),
                None | Some("") => entry.clone(),
                Some(e) => match e.strip_prefix(PLAN_TYPE) {
                    Some(rest) => format!("{entry}.resource{rest}"),
                    None => format!("{entry}.{e}"),
                },
            });
            issue
        })
        .collect();
    FhirError::InEntry { status, issues }
}

/// Checks the envelope and every entry. Too many entries is 413; a Bundle that is not a
/// transaction or batch is 422.
pub fn parse(
    profiles: &Profiles,
    mut bundle: Value,
    max_entries: usize,
) -> Result<Upload, FhirError> {
    let kind = match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => Kind::Transaction,
        Some("batch") => Kind::Batch,
        _ => {
            return Err(FhirError::Invalid(vec![Issue::invalid(
                "Bundle.type",
                "an upload is a transaction or batch Bundle",
            )]))
        }
    };
    if let Some(obj) = bundle.as_object() {
        let unknown: Vec<Issue> = obj
            .keys()
            .filter(|k| !["resourceType", "id", "meta", "type", "entry"].contains(&k.as_str()))
            .map(|k| {
                Issue::not_allowed(
                    format!("Bundle.{k}"),
                    format!("{k} is not allowed in an upload"),
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(FhirError::Invalid(unknown));
        }
    }
    let entries = match bundle.as_object_mut().and_then(|b| b.remove("entry")) {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return Err(FhirError::Invalid(vec![Issue::invalid(
                "Bundle.entry",
                "entry must be a list",
            )]))
        }
    };
    if entries.len() > max_entries {
        return Err(FhirError::InEntry {
            status: 413,
            issues: vec![Issue::at(
                "too-costly",
                SpineCode::FailureToProcessMessage,
                "Bundle.entry",
                format!(
                    "{} entries: an upload may hold at most {max_entries}; send it in parts",
                    entries.len()
                ),
            )],
        });
    }
    let entries = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| parse_entry(profiles, entry).map_err(|e| in_entry(i, e)))
        .collect();
    Ok(Upload { kind, entries })
}

fn parse_entry(profiles: &Profiles, entry: Value) -> Result<Operation, FhirError> {
    let Value::Object(mut entry) = entry else {
        return Err(FhirError::Invalid(vec![Issue::invalid(
            "",
            "an entry must be an object",
        )]));
    };
    let issues = entry_shape_issues(&entry);
    if !issues.is_empty() {
        return Err(FhirError::Invalid(issues));
    }
    let request = entry.remove("request").unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str);
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let resource = entry.remove("resource");
    match method {
        Some("POST") if url == PLAN_TYPE => {
            let if_none_exist = if_none_exist(&request)?;
            Ok(Operation::Create {
                input: entry_plan(profiles, resource)?,
                if_none_exist,
            })
        }
        Some("PUT") => {
            let identifier = identifier_in_url(url)?;
            let if_match = if_match(&request)?;
            Ok(Operation::Upsert {
                identifier,
                input: entry_plan(profiles, resource)?,
                if_match,
            })
        }
        Some("DELETE") => {
            if resource.is_some() {
                return Err(FhirError::Invalid(vec![Issue::not_allowed(
                    "resource",
                    "a DELETE entry carries no resource",
                )]));
            }
            Ok(Operation::Delete {
                identifier: identifier_in_url(url)?,
            })
        }
        Some("POST") => Err(FhirError::Invalid(vec![Issue::invalid(
            "request.url",
            "POST entries create plans: the url must be EpisodeOfCare",
        )])),
        _ => Err(FhirError::Invalid(vec![Issue::invalid(
            "request.method",
            "request.method must be POST, PUT or DELETE",
        )])),
    }
}

/// What is wrong with an entry's own elements: unknown ones, a `fullUrl` that is neither an
/// absolute URL nor `urn:uuid:`, a missing `request.method`.
fn entry_shape_issues(entry: &serde_json::Map<String, Value>) -> Vec<Issue> {
    let mut issues: Vec<Issue> = entry
        .keys()
        .filter(|k| !["fullUrl", "resource", "request"].contains(&k.as_str()))
        .map(|k| Issue::not_allowed(k.clone(), format!("{k} is not allowed in an upload entry")))
        .collect();
    if let Some(full_url) = entry.get("fullUrl") {
        let ok = full_url.as_str().is_some_and(|u| {
            u.strip_prefix("urn:uuid:").map_or_else(
                || url::Url::parse(u).is_ok(),
                |id| uuid::Uuid::parse_str(id).is_ok(),
            )
        });
        if !ok {
            issues.push(Issue::invalid(
                "fullUrl",
                "fullUrl must be an absolute URL or urn:uuid:<uuid>",
            ));
        }
    }
    if entry
        .get("request")
        .and_then(|r| r.get("method"))
        .and_then(Value::as_str)
        .is_none()
    {
        issues.push(Issue::missing(
            "request.method",
            "request.method is required (POST, PUT or DELETE)",
        ));
    }
    issues
}

/// The plan identifier of a conditional entry's `EpisodeOfCare?identifier=system|value`.
fn identifier_in_url(url: &str) -> Result<(String, String), FhirError> {
    let query = url.strip_prefix("EpisodeOfCare?").ok_or_else(|| {
        FhirError::Invalid(vec![Issue::invalid(
            "request.url",
            "the url must be EpisodeOfCare?identifier=system|value",
        )])
    })?;
    conditional_identifier(ResourceType::EpisodeOfCare, query).map_err(|e| at("request.url", e))
}

/// The plan a POST or PUT entry carries, checked as any plan write is.
fn entry_plan(profiles: &Profiles, resource: Option<Value>) -> Result<PlanInput, FhirError> {
    let resource = resource.ok_or_else(|| {
        FhirError::Invalid(vec![Issue::missing(
            "resource",
            "POST and PUT entries carry the plan",
        )])
    })?;
    if resource.get("resourceType").and_then(Value::as_str) != Some(PLAN_TYPE) {
        return Err(FhirError::Invalid(vec![Issue::invalid(
            "resource.resourceType",
            "an upload holds EpisodeOfCare resources only",
        )]));
    }
    PlanInput::check(profiles, resource)
}

/// A POST entry's `request.ifNoneExist` (`identifier=system|value`), if any.
fn if_none_exist(request: &Value) -> Result<Option<(String, String)>, FhirError> {
    request
        .get("ifNoneExist")
        .and_then(Value::as_str)
        .map(|q| {
            conditional_identifier(ResourceType::EpisodeOfCare, q.trim_start_matches('?'))
                .map_err(|e| at("request.ifNoneExist", e))
        })
        .transpose()
}

/// A PUT entry's `request.ifMatch` (a version ETag such as `W/"1"`), if any.
fn if_match(request: &Value) -> Result<Option<i64>, FhirError> {
    request
        .get("ifMatch")
        .and_then(Value::as_str)
        .map(|v| {
            v.trim_start_matches("W/")
                .trim_matches('"')
                .parse()
                .map_err(|_| {
                    FhirError::Invalid(vec![Issue::invalid(
                        "request.ifMatch",
                        "ifMatch must be a version ETag such as W/\"1\"",
                    )])
                })
        })
        .transpose()
}

/// Why an attempt at an upload stopped.
enum Stop {
    /// Entry `0` failed: the attempt was rolled back.
    Entry(usize, FhirError),
    Database(diesel::result::Error),
    /// Writing the part's new plans together met an identifier claimed meanwhile by another
    /// writer: which entry lost cannot be told, so the part runs again entry by entry.
    Together,
    /// `finish` failed.
    Finish(FhirError),
}

impl From<diesel::result::Error> for Stop {
    fn from(e: diesel::result::Error) -> Self {
        Stop::Database(e)
    }
}

/// After this many entries failing while being written, a batch stops re-running and gives
/// each remaining entry a savepoint of its own.
const RETRIES_BEFORE_SAVEPOINTS: usize = 3;

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
/// daily upload was 8× the quiet one); PostgreSQL locks rows, and pays a WAL flush per commit.
/// A transaction Bundle is all or nothing, so it is one transaction however large (bounded by
/// `CPIS_MAX_BUNDLE_ENTRIES`).
fn batch_entries_per_commit(conn: &DbConn) -> usize {
    match conn {
        DbConn::Sqlite(_) => 50,
        DbConn::Postgres(_) => 250,
    }
}

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
            let per_commit = batch_entries_per_commit(conn);
            for start in all.step_by(per_commit) {
                let part = start..(start + per_commit).min(upload.entries.len());
                outcomes.extend(run_range(
                    conn,
                    writes,
                    upload,
                    part,
                    &mut failed,
                    |_, o| Ok(o),
                )?);
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
/// failures the rest run one savepoint each.
fn run_range<R>(
    conn: &mut DbConn,
    writes: &mut PlanWrites<'_>,
    upload: &Upload,
    range: std::ops::Range<usize>,
    failed: &mut [Option<FhirError>],
    finish: impl Fn(&mut DbConn, Vec<Outcome>) -> Result<R, FhirError>,
) -> Result<R, FhirError> {
    let mut raced = Vec::new();
    let mut retries = 0;
    let mut together = true;
    while retries < RETRIES_BEFORE_SAVEPOINTS {
        writes.nesting = Nesting::Folded;
        let attempt = write_transaction(conn, |conn| {
            plan_for_the_values(conn)?;
            if together {
                let named = identifiers_named(upload, &range, failed);
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
            let outcomes = merge(written, failures(failed, &range));
            finish(conn, outcomes).map_err(Stop::Finish)
        });
        writes.part = None;
        match attempt {
            Ok(result) => return Ok(result),
            Err(Stop::Finish(e)) => return Err(e),
            Err(Stop::Entry(i, e)) if lost_a_race(upload, i, &e) && !raced.contains(&i) => {
                raced.push(i);
                retries += 1;
            }
            Err(Stop::Entry(_, e)) if upload.kind == Kind::Transaction => return Err(e),
            Err(Stop::Entry(i, e)) => {
                if let Some(slot) = failed.get_mut(i) {
                    *slot = Some(e);
                }
                retries += 1;
            }
            Err(Stop::Together) => {
                tracing::debug!(
                    target: "cpis::upload",
                    "a part's new plans met an identifier claimed meanwhile: run entry by entry"
                );
                together = false;
                retries += 1;
            }
            Err(Stop::Database(e)) => return Err(e.into()),
        }
    }
    // The rest one savepoint each.
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
        let outcomes = merge(written, failures(failed, &range));
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

/// The batch-response / transaction-response Bundle: one entry per request entry, in order.
pub fn response_bundle(base: &str, kind: Kind, outcomes: &[Outcome]) -> Value {
    let entries: Vec<Value> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Written(w) => {
                let status = if w.created { "201 Created" } else { "200 OK" };
                json!({
                    "fullUrl": format!("{base}/{PLAN_TYPE}/{}", w.row.id),
                    "response": {
                        "status": status,
                        "location": format!("{PLAN_TYPE}/{}/_history/{}", w.row.id, w.row.version_id),
                        "etag": format!("W/\"{}\"", w.row.version_id),
                        "lastModified": instant(w.row.last_updated),
                    }
                })
            }
            Outcome::Deleted => json!({"response": {"status": "204 No Content"}}),
            // As `DELETE EpisodeOfCare?identifier=` answers: nothing matched, nothing to do.
            Outcome::NothingToDelete => json!({"response": {"status": "204 No Content"}}),
            Outcome::Failed(e) => {
                use actix_web::ResponseError;
                let code = e.status_code();
                json!({"response": {
                    "status": format!("{} {}", code.as_u16(), code.canonical_reason().unwrap_or_default()),
                    "outcome": operation_outcome(&e.issues(), "error"),
                }})
            }
        })
        .collect();
    let ty = match kind {
        Kind::Transaction => "transaction-response",
        Kind::Batch => "batch-response",
    };
    json!({"resourceType": "Bundle", "type": ty, "entry": entries})
}

/// Keeps a batch's response as the caller's LA's data-quality report; returns it with its id,
/// meta and the counts of accepted and rejected entries.
pub fn keep_report(
    conn: &mut DbConn,
    caller: &Caller,
    mut response: Value,
    outcomes: &[Outcome],
    now: i64,
) -> Result<Value, FhirError> {
    let rejected = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count() as i64;
    let accepted = outcomes.len() as i64 - rejected;
    let id = uuid::Uuid::now_v7().to_string();
    if let Some(obj) = response.as_object_mut() {
        obj.insert("id".into(), json!(id));
        obj.insert(
            "meta".into(),
            json!({
                "versionId": "1",
                "lastUpdated": instant(now),
                "profile": [format!("{PROFILE_BASE}CPIS-Bundle-response")],
                "extension": [
                    {"url": ACCEPTED_URL, "valueUnsignedInt": accepted},
                    {"url": REJECTED_URL, "valueUnsignedInt": rejected},
                ],
            }),
        );
        obj.insert("timestamp".into(), json!(instant(now)));
    }
    reports::insert(
        conn,
        &ReportRow {
            id,
            la_ods: caller.org().unwrap_or_default().to_string(),
            created_ms: now,
            accepted,
            rejected,
            content: response.to_string(),
        },
    )?;
    Ok(response)
}
