//! Every way an upload can be wrong, one row each: the request (target, caller, body), the HTTP
//! status, and the exact issues of the OperationOutcome (FHIR `issue.code`, Spine code and
//! FHIRPath `expression`). After every row the database is exactly as it was: the same row
//! counts and the same version of every resource (SPEC §5, §6: "a rejected write changes
//! nothing").

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

mod outcomes;
mod rows;

/// An LA that is not registered.
const UNKNOWN_LA: &str = "E06000001";
/// The body limit of the table's server: far above any row's body but the oversized ones.
const BODY_LIMIT: usize = 16 * 1024;

/// (FHIR issue.code, Spine code) of each kind of problem (src/error/mod.rs, SPEC §5).
type Kind = (&'static str, &'static str);
const MISSING: Kind = ("required", "MISSING_VALUE");
const INVALID: Kind = ("value", "INVALID_VALUE");
const NOT_ALLOWED: Kind = ("structure", "ADDITIONAL_PROPERTIES");
const RULE: Kind = ("invariant", "VALIDATION_ERROR");
const UNPARSEABLE: Kind = ("structure", "VALIDATION_ERROR");
const FORBIDDEN_UPDATE: Kind = ("business-rule", "FORBIDDEN_UPDATE");
const DUPLICATE: Kind = ("duplicate", "INVALID_VALUE");
const UNSUPPORTED: Kind = ("not-supported", "UNSUPPORTED_SERVICE");
const TOO_LARGE: Kind = ("too-long", "FAILURE_TO_PROCESS_MESSAGE");
const NOT_OWN_LA: Kind = ("forbidden", "ACCESS_DENIED");

/// Where a row's request goes, and the valid body it starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    /// POST /Organization as operations; base: a new LA.
    CreateOrganization,
    /// PUT /Organization/{id of LA_A} as operations; base: LA_A as stored.
    UpdateOrganization,
    /// POST /EpisodeOfCare as LA_A; base: a new plan P-NEW.
    CreatePlan,
    /// PUT /EpisodeOfCare/{id of P-1} as LA_A; base: P-1 as stored.
    UpdatePlan,
    /// PUT /EpisodeOfCare/{id of W-1} as LA_A; base: W-1 (entered-in-error) as stored.
    UpdateWithdrawnPlan,
    /// PUT /EpisodeOfCare?identifier=…|P-1 as LA_A; base: P-1 as the LA uploads it.
    UpsertPlan,
    /// PUT /EpisodeOfCare?identifier=…|P-NEW as LA_A; base: the new plan P-NEW.
    UpsertNewPlan,
    /// PUT /EpisodeOfCare?identifier=…|W-1 as LA_A; base: W-1 as the LA uploads it.
    UpsertWithdrawnPlan,
    /// POST /EpisodeOfCare/$validate as LA_A; base: the new plan P-NEW.
    ValidatePlan,
    /// POST /Organization/$validate as operations; base: a new LA.
    ValidateOrganization,
}

enum Body {
    /// The target's base body, changed by a small function.
    Json(fn(&mut Value)),
    /// Bytes as they are, with this Content-Type (none: no header).
    Raw(Vec<u8>, Option<&'static str>),
}

struct Row {
    name: &'static str,
    target: Target,
    /// A social-care caller of this LA instead of the target's usual caller.
    caller_la: Option<&'static str>,
    body: Body,
    status: u16,
    /// (issue.code, Spine code, expression), in any order.
    issues: Vec<(&'static str, &'static str, Option<&'static str>)>,
}

fn row(name: &'static str, target: Target, change: fn(&mut Value)) -> Row {
    Row {
        name,
        target,
        caller_la: None,
        body: Body::Json(change),
        status: 0,
        issues: vec![],
    }
}

fn raw(
    name: &'static str,
    target: Target,
    bytes: &[u8],
    content_type: Option<&'static str>,
) -> Row {
    Row {
        body: Body::Raw(bytes.to_vec(), content_type),
        ..row(name, target, |_| {})
    }
}

const FHIR_JSON: Option<&str> = Some("application/fhir+json");

impl Row {
    /// Rejected with `status` and one issue of `kind` at `expression`.
    fn is(mut self, status: u16, kind: Kind, expression: &'static str) -> Row {
        self.status = status;
        self.issues.push((kind.0, kind.1, Some(expression)));
        self
    }
    /// One more issue in the same response.
    fn and(mut self, kind: Kind, expression: &'static str) -> Row {
        self.issues.push((kind.0, kind.1, Some(expression)));
        self
    }
    /// Rejected with `status` and one issue without an expression (the body as a whole).
    fn whole(mut self, status: u16, kind: Kind) -> Row {
        self.status = status;
        self.issues.push((kind.0, kind.1, None));
        self
    }
    /// `$validate`: 200 with one error issue of `kind` at `expression`.
    fn reports(self, kind: Kind, expression: &'static str) -> Row {
        self.is(200, kind, expression)
    }
    fn by(mut self, la: &'static str) -> Row {
        self.caller_la = Some(la);
        self
    }
}

fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = v.pointer_mut(parent).unwrap();
    match parent {
        Value::Object(o) => {
            o.remove(key).unwrap();
        }
        Value::Array(a) => {
            a.remove(key.parse().unwrap());
        }
        _ => panic!("{pointer} is not in an object or array"),
    }
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    match v.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            v.pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(key.to_string(), value);
        }
    }
}

fn duplicate_first(v: &mut Value, pointer: &str) {
    let array = v.pointer_mut(pointer).unwrap().as_array_mut().unwrap();
    let first = array[0].clone();
    array.push(first);
}

fn oversized_la() -> Vec<u8> {
    let mut la = la_json("E06000099");
    la["name"] = json!("x".repeat(BODY_LIMIT + 1));
    la.to_string().into_bytes()
}

fn oversized_plan() -> Vec<u8> {
    let mut plan = plan_json("9000000009", LA_A, "P-NEW");
    plan["identifier"][0]["value"] = json!("P".repeat(BODY_LIMIT + 1));
    plan.to_string().into_bytes()
}

/// The state the table runs against: two LAs, an active plan P-1 and a withdrawn plan W-1.
struct Seed {
    la_a: Value,
    p1: Value,
    w1: Value,
}

async fn seed(app: &TestApp) -> Seed {
    let la_a = app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    let p1 = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let mut w1 = app.create_plan(&plan_json("9912003888", LA_A, "W-1")).await;
    w1["status"] = json!("entered-in-error");
    let path = format!("/EpisodeOfCare/{}", w1["id"].as_str().unwrap());
    let res = app.put(&path, &app.social(LA_A), &w1).await;
    assert_eq!(res.status(), 200, "withdraw W-1");
    let w1 = body(res).await;
    Seed { la_a, p1, w1 }
}

fn upload(reference: &str) -> Value {
    match reference {
        "P-1" => plan_json("9449306753", LA_A, "P-1"),
        "W-1" => {
            let mut w1 = plan_json("9912003888", LA_A, "W-1");
            w1["status"] = json!("entered-in-error");
            w1
        }
        _ => plan_json("9000000009", LA_A, reference),
    }
}

fn conditional(reference: &str) -> String {
    format!(
        "/EpisodeOfCare?identifier={}|{reference}",
        plan_system(LA_A)
    )
}

/// The method, path, default caller and base body of a target.
fn request_of(target: Target, seed: &Seed) -> (Method, String, bool, Value) {
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    use Target::*;
    match target {
        CreateOrganization => (
            Method::POST,
            "/Organization".into(),
            true,
            la_json("E06000099"),
        ),
        UpdateOrganization => (
            Method::PUT,
            format!("/Organization/{}", id(&seed.la_a)),
            true,
            seed.la_a.clone(),
        ),
        CreatePlan => (
            Method::POST,
            "/EpisodeOfCare".into(),
            false,
            upload("P-NEW"),
        ),
        UpdatePlan => (
            Method::PUT,
            format!("/EpisodeOfCare/{}", id(&seed.p1)),
            false,
            seed.p1.clone(),
        ),
        UpdateWithdrawnPlan => (
            Method::PUT,
            format!("/EpisodeOfCare/{}", id(&seed.w1)),
            false,
            seed.w1.clone(),
        ),
        UpsertPlan => (Method::PUT, conditional("P-1"), false, upload("P-1")),
        UpsertNewPlan => (Method::PUT, conditional("P-NEW"), false, upload("P-NEW")),
        UpsertWithdrawnPlan => (Method::PUT, conditional("W-1"), false, upload("W-1")),
        ValidatePlan => (
            Method::POST,
            "/EpisodeOfCare/$validate".into(),
            false,
            upload("P-NEW"),
        ),
        ValidateOrganization => (
            Method::POST,
            "/Organization/$validate".into(),
            true,
            la_json("E06000099"),
        ),
    }
}

/// The issues of an OperationOutcome as (code, Spine code, expression), sorted.
fn issues_of(outcome: &Value) -> Vec<(String, String, Option<String>)> {
    let mut found: Vec<_> = outcome["issue"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i["code"].as_str().unwrap_or_default().to_string(),
                spine_of(i).to_string(),
                i["expression"][0].as_str().map(str::to_string),
            )
        })
        .collect();
    found.sort();
    found
}

fn spine_of(issue: &Value) -> &str {
    issue["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

/// Sends each row to the seeded server and says, row by row, what differed from the row: the
/// status, the issues (exactly these, every one an error), or the database (changed at all).
async fn failures_of(app: &TestApp, seed: &Seed, rows: &[Row]) -> Vec<String> {
    let snapshot = app.snapshot();
    let versions = app.versions();
    let mut names = HashSet::new();
    let mut inputs = HashSet::new();
    let mut failures = Vec::new();
    for row in rows {
        assert!(names.insert(row.name), "two rows are named {:?}", row.name);
        let (method, path, as_ops, base) = request_of(row.target, seed);
        let token = match (row.caller_la, as_ops) {
            (Some(la), _) => app.social(la),
            (None, true) => app.ops(),
            (None, false) => app.social(LA_A),
        };
        let (bytes, content_type) = match &row.body {
            Body::Json(change) => {
                let mut body = base;
                change(&mut body);
                (body.to_string().into_bytes(), FHIR_JSON)
            }
            Body::Raw(bytes, content_type) => (bytes.clone(), *content_type),
        };
        assert!(
            inputs.insert((row.target, row.caller_la, bytes.clone(), content_type)),
            "{:?} repeats another row's input",
            row.name
        );
        let mut request = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(token)
            .body(bytes);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let res = request.send().await.unwrap();
        let status = res.status().as_u16();
        let outcome = body(res).await;
        let mut expected: Vec<_> = row
            .issues
            .iter()
            .map(|(code, spine, expr)| {
                (
                    code.to_string(),
                    spine.to_string(),
                    expr.map(str::to_string),
                )
            })
            .collect();
        expected.sort();
        let found = issues_of(&outcome);
        let severities_ok = outcome["issue"]
            .as_array()
            .is_some_and(|issues| issues.iter().all(|i| i["severity"] == "error"));
        if status != row.status || found != expected || !severities_ok {
            failures.push(format!(
                "{}: expected {} {expected:?}\n    got {status} {found:?}\n    {outcome}",
                row.name, row.status
            ));
        }
        if app.snapshot() != snapshot || app.versions() != versions {
            failures.push(format!("{}: the database changed", row.name));
        }
    }
    failures
}

#[tokio::test]
async fn every_invalid_input_is_rejected_precisely_and_writes_nothing() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = BODY_LIMIT).await;
    let seed = seed(&app).await;
    let rows = rows::rows();
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let failures = failures_of(&app, &seed, &rows).await;
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// FHIR strings hold no control characters but tab, CR and LF (`[ \r\n\t\S]+`): one in any
/// string written is an invalid value at that element, and nothing is written.
#[tokio::test]
async fn a_control_character_in_any_string_is_an_invalid_value_at_its_element() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    use Target::*;
    let rows = vec![
        row("a NUL in an LA's name", CreateOrganization, |o| {
            set(o, "/name", json!("Local\u{0}authority"))
        })
        .is(422, INVALID, "Organization.name"),
        row(
            "an escape in an LA's phone number",
            UpdateOrganization,
            |o| set(o, "/telecom/0/value", json!("020 7000\u{1b} 0001")),
        )
        .is(422, INVALID, "Organization.telecom[0].value"),
        row("a bell in a plan's reference", CreatePlan, |p| {
            set(p, "/identifier/0/value", json!("P-\u{7}NEW"))
        })
        .is(422, INVALID, "EpisodeOfCare.identifier[0].value"),
        row("a unit separator in a plan's system", UpsertNewPlan, |p| {
            set(
                p,
                "/type/0/coding/0/system",
                json!("http://snomed.info/sct\u{1f}"),
            )
        })
        .is(422, INVALID, "EpisodeOfCare.type[0].coding[0].system"),
        row("validating a plan with a vertical tab", ValidatePlan, |p| {
            set(p, "/identifier/0/value", json!("P-\u{b}NEW"))
        })
        .reports(INVALID, "EpisodeOfCare.identifier[0].value"),
    ];
    let failures = failures_of(&app, &seed, &rows).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
