//! LA uploads (SPEC §3 Bundle): `transaction` (all or nothing) and `batch` (each entry on its
//! own) Bundles of EpisodeOfCare entries — `POST EpisodeOfCare`, conditional
//! `PUT EpisodeOfCare?identifier=system|value` (the idempotent daily upsert) and conditional
//! `DELETE EpisodeOfCare?identifier=…`.
//!
//! Every entry is checked before anything is written (`execute` says how they then run). A
//! transaction stops at the first failure and rolls everything back; a batch keeps the entries
//! that succeeded. Errors name their entry (`Bundle.entry[3].resource.period.start`).
//!
//! `parse` checks the Bundle (`parse.rs`); `execute` runs it (`run.rs`; the retry state machine
//! of a part is `retry.rs`); here are the values they share and the response.

mod parse;
mod retry;
mod run;

use serde_json::{json, Value};

use super::plan::PlanInput;
use super::Written;
use crate::auth::Caller;
use crate::db::reports::{self, ReportRow};
use crate::db::DbConn;
use crate::error::{operation_outcome, FhirError};
use crate::fhir::types::{instant, PROFILE_BASE};

pub use parse::{in_entry, parse};
pub use run::execute;

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
