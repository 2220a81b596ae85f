//! `cpis import`: an LA's plans from a CSV file, sent as batch uploads in chunks — to a server
//! over HTTP with a token, or straight into the database — with a progress bar and a summary
//! of the rejected rows and why.
//!
//! CSV layout (a header row, then one plan per row; columns in any order):
//!
//! | column           | required | value                                                        |
//! |------------------|----------|--------------------------------------------------------------|
//! | `nhs_number`     | yes      | the child's (for an unborn child plan, the mother's) NHS number |
//! | `plan_type`      | yes      | `CPP`, `LAC` or `UCPP` (or the SNOMED CT code)               |
//! | `start`          | yes      | `YYYY-MM-DD`                                                 |
//! | `end`            | no       | `YYYY-MM-DD`                                                 |
//! | `plan_reference` | yes      | the LA's own reference for the plan (unique per LA)          |
//! | `status`         | no       | `active` (default), `finished`, `cancelled`, `entered-in-error` |
//!
//! Each row becomes a conditional `PUT EpisodeOfCare?identifier={system}|{plan_reference}`, so
//! importing the same file again changes nothing.

use std::collections::HashMap;
use std::io::Read;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::fhir::episode_of_care::PlanType;
use crate::fhir::types::{NHS_NUMBER_SYSTEM, ODS_SYSTEM, SNOMED_SYSTEM};

/// The plan-reference system of an LA unless another is given: `https://fhir.{ods}.gov.uk/Id/plan`.
pub fn default_plan_system(ods: &str) -> String {
    format!("https://fhir.{}.gov.uk/Id/plan", ods.to_ascii_lowercase())
}

/// A row that could not be sent or was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub rows: usize,
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
}

/// One CSV row as an upload entry, or why it cannot be one.
fn entry(row: &HashMap<String, String>, ods: &str, system: &str) -> Result<Value, String> {
    let get = |name: &str| row.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let need = |name: &str| get(name).ok_or_else(|| format!("{name} is empty"));
    let plan_type = need("plan_type")?;
    let code = match plan_type.to_ascii_uppercase().as_str() {
        "CPP" => PlanType::ChildProtectionPlan,
        "LAC" => PlanType::LookedAfterChild,
        "UCPP" => PlanType::UnbornChildProtectionPlan,
        other => PlanType::from_code(other)
            .ok_or_else(|| format!("plan_type {plan_type:?} is not CPP, LAC or UCPP"))?,
    }
    .code();
    let reference = need("plan_reference")?;
    let mut period = json!({"start": need("start")?});
    if let (Some(end), Some(p)) = (get("end"), period.as_object_mut()) {
        p.insert("end".into(), json!(end));
    }
    let plan = json!({
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": system, "value": reference}],
        "status": get("status").unwrap_or("active"),
        "type": [{"coding": [{"system": SNOMED_SYSTEM, "code": code}]}],
        "patient": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": need("nhs_number")?}},
        "managingOrganization": {"identifier": {"system": ODS_SYSTEM, "value": ods}},
        "period": period,
    });
    let url = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("identifier", &format!("{system}|{reference}"))
        .finish();
    Ok(
        json!({"resource": plan, "request": {"method": "PUT", "url": format!("EpisodeOfCare?{url}")}}),
    )
}

/// Upload entries with the CSV line each came from.
pub type Entries = Vec<(usize, Value)>;

/// Reads the CSV into entries (with their line numbers) and the rows rejected before sending.
pub fn read_csv(
    input: impl Read,
    ods: &str,
    system: &str,
) -> Result<(Entries, Vec<Rejected>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for required in ["nhs_number", "plan_type", "start", "plan_reference"] {
        if !headers.iter().any(|h| h == required) {
            return Err(format!("the header row has no {required} column"));
        }
    }
    let mut entries = Vec::new();
    let mut rejected = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let row = match record {
            Ok(r) => r,
            Err(e) => {
                rejected.push(Rejected {
                    line,
                    reason: format!("not a CSV row: {e}"),
                });
                continue;
            }
        };
        let fields: HashMap<String, String> = headers
            .iter()
            .cloned()
            .zip(row.iter().map(str::to_string))
            .collect();
        match entry(&fields, ods, system) {
            Ok(e) => entries.push((line, e)),
            Err(reason) => rejected.push(Rejected { line, reason }),
        }
    }
    Ok((entries, rejected))
}

/// Where the batches go.
pub trait Sink {
    /// Sends one batch Bundle; returns the batch-response.
    fn send(&mut self, bundle: &Value) -> Result<Value, String>;

    /// Sends every batch; returns their batch-responses in order. One at a time unless a sink
    /// can do better.
    fn send_all(
        &mut self,
        bundles: &[Value],
        progress: &ProgressBar,
    ) -> Result<Vec<Value>, String> {
        bundles
            .iter()
            .map(|bundle| {
                let answer = self.send(bundle);
                progress.inc(bundle_size(bundle));
                answer
            })
            .collect()
    }
}

fn bundle_size(bundle: &Value) -> u64 {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(0, |e| e.len() as u64)
}

/// Sends `entries` as batch Bundles of `chunk` entries and gathers the results.
pub fn run(
    sink: &mut dyn Sink,
    entries: Entries,
    mut rejected: Vec<Rejected>,
    chunk: usize,
    show_progress: bool,
) -> Result<Summary, String> {
    let rows = entries.len() + rejected.len();
    let progress = if show_progress {
        ProgressBar::new(entries.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} plans  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Each part's CSV lines, and its entries moved (not copied) into its Bundle.
    let mut parts: Vec<Vec<usize>> = Vec::new();
    let mut bundles: Vec<Value> = Vec::new();
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let (lines, part): (Vec<usize>, Vec<Value>) = entries.by_ref().take(chunk.max(1)).unzip();
        parts.push(lines);
        bundles.push(json!({"resourceType": "Bundle", "type": "batch", "entry": part}));
    }
    let responses = sink.send_all(&bundles, &progress)?;
    let mut accepted = 0;
    for (part, response) in parts.iter().zip(&responses) {
        let answers = response
            .get("entry")
            .and_then(Value::as_array)
            .ok_or("the server's answer is not a batch-response")?;
        for (line, answer) in part.iter().zip(answers) {
            let status = answer
                .pointer("/response/status")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if status.starts_with('2') {
                accepted += 1;
            } else {
                rejected.push(Rejected {
                    line: *line,
                    reason: reason(status, answer.pointer("/response/outcome")),
                });
            }
        }
    }
    progress.finish_and_clear();
    rejected.sort_by_key(|r| r.line);
    Ok(Summary {
        rows,
        accepted,
        rejected,
    })
}

/// `422 …: Bundle.entry[3].resource.period.start: reason; …`, with the element named as a
/// plan's (`EpisodeOfCare.period.start`), which is what the row's author knows.
fn reason(status: &str, outcome: Option<&Value>) -> String {
    let issues: Vec<String> = outcome
        .and_then(|o| o.get("issue"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|issue| {
            let at = issue
                .pointer("/expression/0")
                .and_then(Value::as_str)
                .map(|e| match e.split_once("].resource") {
                    Some((_, rest)) => format!("EpisodeOfCare{rest}: "),
                    None => String::new(),
                })
                .unwrap_or_default();
            let why = issue
                .get("diagnostics")
                .and_then(Value::as_str)
                .unwrap_or_default();
            format!("{at}{why}")
        })
        .collect();
    format!("{status}: {}", issues.join("; "))
}

/// Sends batches to a server: `POST {base}` with a bearer token.
pub struct HttpSink {
    base: String,
    token: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl HttpSink {
    pub fn new(base: &str, token: &str) -> Result<HttpSink, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpSink {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            client: reqwest::Client::new(),
            runtime,
        })
    }
}

/// Batches in flight at once: the server checks one while it writes the other.
const IN_FLIGHT: usize = 2;

impl HttpSink {
    async fn post(&self, bundle: String) -> Result<Value, String> {
        let response = self
            .client
            .post(&self.base)
            .bearer_auth(&self.token)
            .header("Content-Type", "application/fhir+json")
            .body(bundle)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("the server's answer is not JSON: {e}"))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!(
                "the server refused the upload ({status}): {}",
                reason(status.as_str(), Some(&body))
            ))
        }
    }
}

impl Sink for HttpSink {
    fn send(&mut self, bundle: &Value) -> Result<Value, String> {
        self.runtime.block_on(self.post(bundle.to_string()))
    }

    fn send_all(
        &mut self,
        bundles: &[Value],
        progress: &ProgressBar,
    ) -> Result<Vec<Value>, String> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let this = &*self;
        self.runtime.block_on(
            stream::iter(bundles.iter().map(|bundle| async move {
                let answer = this.post(bundle.to_string()).await;
                progress.inc(bundle_size(bundle));
                answer
            }))
            .buffered(IN_FLIGHT)
            .try_collect(),
        )
    }
}

/// Writes batches straight into the database, as the LA would through the API.
pub struct DirectSink {
    pub pool: crate::db::DbPool,
    pub profiles: crate::validation::Profiles,
    pub caller: crate::auth::Caller,
    pub max_entries: usize,
    /// The engine runs several write transactions at once (`Backend::writes_in_parallel`).
    pub parallel_writes: bool,
}

impl DirectSink {
    fn write(&self, bundle: &Value) -> Result<Value, String> {
        use crate::service::upload;
        let parsed = upload::parse(&self.profiles, bundle.clone(), self.max_entries)
            .map_err(|e| e.to_string())?;
        let mut conn = self.pool.get().map_err(|e| e.to_string())?;
        let now = crate::clock::Clock::system().now_ms();
        upload::execute(&mut conn, &self.caller, &parsed, now, |conn, outcomes| {
            let response = upload::response_bundle("", parsed.kind, outcomes);
            upload::keep_report(conn, &self.caller, response, outcomes, now)
        })
        .map_err(|e| e.to_string())
    }

    /// How many batches are written at once (`Backend::writes_in_parallel`).
    fn writers(&self) -> usize {
        if self.parallel_writes {
            IN_FLIGHT
        } else {
            1
        }
    }
}

impl Sink for DirectSink {
    fn send(&mut self, bundle: &Value) -> Result<Value, String> {
        self.write(bundle)
    }

    /// On PostgreSQL, batches are written by `IN_FLIGHT` threads at once (each its own
    /// transaction on its own connection); the answers come back in order.
    fn send_all(
        &mut self,
        bundles: &[Value],
        progress: &ProgressBar,
    ) -> Result<Vec<Value>, String> {
        let writers = self.writers();
        let this = &*self;
        let mut answers: Vec<(usize, Result<Value, String>)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..writers)
                .map(|w| {
                    scope.spawn(move || {
                        (w..bundles.len())
                            .step_by(writers)
                            .filter_map(|i| bundles.get(i).map(|b| (i, b)))
                            .map(|(i, bundle)| {
                                let answer = this.write(bundle);
                                progress.inc(bundle_size(bundle));
                                (i, answer)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap_or_default())
                .collect()
        });
        if answers.len() != bundles.len() {
            return Err("an import thread failed".into());
        }
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "nhs_number,plan_type,start,end,plan_reference\n\
        9449306753,CPP,2026-01-05,,P-1\n\
        9000000009,lac,2025-06-01,2026-06-01,P-2\n\
        9912003888,XYZ,2026-01-05,,P-3\n\
        ,CPP,2026-01-05,,P-4\n";

    #[test]
    fn rows_become_conditional_upserts_and_bad_rows_are_rejected_with_their_line() {
        let (entries, rejected) = read_csv(
            CSV.as_bytes(),
            "E09000030",
            &default_plan_system("E09000030"),
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        let (line, first) = &entries[0];
        assert_eq!(*line, 2);
        assert_eq!(
            first["request"]["url"],
            "EpisodeOfCare?identifier=https%3A%2F%2Ffhir.e09000030.gov.uk%2FId%2Fplan%7CP-1"
        );
        assert_eq!(
            first["resource"]["type"][0]["coding"][0]["code"],
            "342191000000101"
        );
        assert_eq!(entries[1].1["resource"]["period"]["end"], "2026-06-01");
        assert_eq!(
            rejected,
            vec![
                Rejected {
                    line: 4,
                    reason: "plan_type \"XYZ\" is not CPP, LAC or UCPP".into()
                },
                Rejected {
                    line: 5,
                    reason: "nhs_number is empty".into()
                },
            ]
        );
    }

    #[test]
    fn a_file_without_the_required_columns_is_refused() {
        assert!(read_csv("nhs,type\n1,2\n".as_bytes(), "E1", "s").is_err());
    }
}
