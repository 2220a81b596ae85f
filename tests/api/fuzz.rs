//! Property tests of every write path (create, update, conditional update, `$validate`) with
//! mutated valid resources and with arbitrary bytes. Whatever arrives, the server answers
//! without a 5xx and keeps answering; what it accepts is stored valid (profile and business
//! rules, and the plan's Flag valid too); what it rejects leaves the database as it was.
//!
//! One server per property; the cases are generated from a fixed seed, so every run sends the
//! same requests (280 in all) and a failure is reproduced by running the test again.

use std::cell::Cell;

use cpis::fhir::episode_of_care::Plan;
use cpis::validation::Profiles;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

mod mutation;

use mutation::*;

const MUTATION_CASES: u32 = 200;
const BYTES_CASES: u32 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// POST /Organization as operations: a new LA per case.
    CreateOrganization,
    /// PUT /Organization/{LA_B} as operations (LA_B manages no plan, so plans stay writable).
    UpdateOrganization,
    /// POST /Organization/$validate as operations.
    ValidateOrganization,
    /// POST /EpisodeOfCare as LA_A: a new plan per case.
    CreatePlan,
    /// PUT /EpisodeOfCare/{P-1} as LA_A.
    UpdatePlan,
    /// PUT /EpisodeOfCare?identifier=…|U-n as LA_A (n in 0..4: creates, then updates).
    UpsertPlan,
    /// POST /EpisodeOfCare/$validate as LA_A.
    ValidatePlan,
}

const ENDPOINTS: [Endpoint; 7] = [
    Endpoint::CreateOrganization,
    Endpoint::UpdateOrganization,
    Endpoint::ValidateOrganization,
    Endpoint::CreatePlan,
    Endpoint::UpdatePlan,
    Endpoint::UpsertPlan,
    Endpoint::ValidatePlan,
];

impl Endpoint {
    fn is_organization(self) -> bool {
        matches!(
            self,
            Endpoint::CreateOrganization
                | Endpoint::UpdateOrganization
                | Endpoint::ValidateOrganization
        )
    }
    fn writes(self) -> bool {
        !matches!(
            self,
            Endpoint::ValidateOrganization | Endpoint::ValidatePlan
        )
    }
}

/// A valid plan with every optional element, so that removing one can be valid too.
fn full_plan(nhs: &str, reference: &str) -> Value {
    let mut plan = plan_json(nhs, LA_A, reference);
    plan["type"][0]["coding"][0]["display"] = json!("Subject to child protection plan");
    plan["period"]["end"] = json!("2027-01-04");
    plan
}

/// A fresh valid NHS number per case (so accepted creates are distinct children).
fn nhs_number(n: u64) -> String {
    (0..)
        .find_map(|k| cpis::fhir::NhsNumber::from_stem(400_000_000 + n * 10 + k))
        .unwrap()
        .as_str()
        .to_string()
}

struct Fuzz {
    app: TestApp,
    profiles: Profiles,
    la_b_id: String,
    p1_id: String,
    case: Cell<u64>,
    /// Writes accepted (and read back valid), and writes rejected (with nothing written).
    accepted: Cell<u64>,
    rejected: Cell<u64>,
}

impl Fuzz {
    async fn start() -> Fuzz {
        let app = TestApp::spawn().await;
        app.create_la(LA_A).await;
        let la_b = app.create_la(LA_B).await;
        let p1 = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
        Fuzz {
            profiles: Profiles::load().unwrap(),
            la_b_id: la_b["id"].as_str().unwrap().to_string(),
            p1_id: p1["id"].as_str().unwrap().to_string(),
            app,
            case: Cell::new(0),
            accepted: Cell::new(0),
            rejected: Cell::new(0),
        }
    }

    /// Method, path, token and the valid body an endpoint starts from in case `n`.
    async fn request(&self, endpoint: Endpoint, n: u64) -> (Method, String, String, Value) {
        let app = &self.app;
        let current = |path: String, token: String| async move {
            let res = app.get(&path, &token).await;
            assert_eq!(res.status(), 200, "read {path}");
            body(res).await
        };
        match endpoint {
            Endpoint::CreateOrganization => (
                Method::POST,
                "/Organization".into(),
                app.ops(),
                la_json(&format!("F{n:05}")),
            ),
            Endpoint::UpdateOrganization => {
                let path = format!("/Organization/{}", self.la_b_id);
                let la = current(path.clone(), app.ops()).await;
                (Method::PUT, path, app.ops(), la)
            }
            Endpoint::ValidateOrganization => (
                Method::POST,
                "/Organization/$validate".into(),
                app.ops(),
                la_json(&format!("F{n:05}")),
            ),
            Endpoint::CreatePlan => (
                Method::POST,
                "/EpisodeOfCare".into(),
                app.social(LA_A),
                full_plan(&nhs_number(n), &format!("F-{n}")),
            ),
            Endpoint::UpdatePlan => {
                let path = format!("/EpisodeOfCare/{}", self.p1_id);
                let plan = current(path.clone(), app.social(LA_A)).await;
                (Method::PUT, path, app.social(LA_A), plan)
            }
            Endpoint::UpsertPlan => {
                let reference = format!("U-{}", n % 4);
                (
                    Method::PUT,
                    format!(
                        "/EpisodeOfCare?identifier={}|{reference}",
                        plan_system(LA_A)
                    ),
                    app.social(LA_A),
                    full_plan("9000000009", &reference),
                )
            }
            Endpoint::ValidatePlan => (
                Method::POST,
                "/EpisodeOfCare/$validate".into(),
                app.social(LA_A),
                full_plan(&nhs_number(n), &format!("F-{n}")),
            ),
        }
    }

    /// Prints what the run exercised. The mutations must have had some writes accepted, or
    /// the "stored valid" property was never tested.
    fn report(&self, property: &str, must_accept: bool) {
        let (accepted, rejected) = (self.accepted.get(), self.rejected.get());
        eprintln!(
            "{property}: {} cases; {accepted} writes accepted and read back valid, \
             {rejected} rejected with nothing written",
            self.case.get()
        );
        assert!(
            accepted > 0 || !must_accept,
            "{property}: no write was ever accepted"
        );
    }

    fn next_case(&self) -> u64 {
        let n = self.case.get() + 1;
        self.case.set(n);
        n
    }

    /// Sends one body and checks every property of the answer.
    async fn check(
        &self,
        endpoint: Endpoint,
        method: Method,
        path: &str,
        token: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(), TestCaseError> {
        let app = &self.app;
        let before = (app.snapshot(), app.versions());
        let mut request = app
            .client
            .request(method, app.url(path))
            .bearer_auth(token)
            .body(bytes);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let res = request
            .send()
            .await
            .map_err(|e| TestCaseError::fail(format!("no answer from {path}: {e}")))?;
        let status = res.status().as_u16();
        let answer = body(res).await;
        prop_assert!(status < 500, "{path}: {status} {answer}");
        let alive = app.client.get(app.url("/metadata")).send().await;
        prop_assert!(
            alive.is_ok_and(|r| r.status() == 200),
            "the server stopped answering after {path}"
        );
        let accepted = (200..300).contains(&status) && endpoint.writes();
        if !accepted {
            prop_assert_eq!(
                (app.snapshot(), app.versions()),
                before,
                "{} {} changed the database: {}",
                path,
                status,
                answer
            );
            if endpoint.writes() {
                prop_assert_eq!(&answer["resourceType"], "OperationOutcome");
                self.rejected.set(self.rejected.get() + 1);
            }
            return Ok(());
        }
        self.accepted.set(self.accepted.get() + 1);
        self.check_stored(endpoint, &answer).await
    }

    /// The stored resource an accepted write returned, read back, is valid.
    async fn check_stored(&self, endpoint: Endpoint, written: &Value) -> Result<(), TestCaseError> {
        let app = &self.app;
        let id = written["id"].as_str().unwrap_or_default();
        if endpoint.is_organization() {
            let stored = body(app.get(&format!("/Organization/{id}"), &app.ops()).await).await;
            let issues = self
                .profiles
                .validate("Organization", "Organization", &stored);
            prop_assert!(
                issues.is_empty(),
                "stored {stored} breaks its profile: {issues:?}"
            );
            let rules = cpis::service::organization::check(&self.profiles, &stored);
            prop_assert!(rules.is_ok(), "stored {stored} breaks the rules: {rules:?}");
        } else {
            let token = app.social(LA_A);
            let stored = body(app.get(&format!("/EpisodeOfCare/{id}"), &token).await).await;
            let issues = self
                .profiles
                .validate("EpisodeOfCare", "EpisodeOfCare", &stored);
            prop_assert!(
                issues.is_empty(),
                "stored {stored} breaks its profile: {issues:?}"
            );
            let rules = Plan::from_resource(&stored);
            prop_assert!(rules.is_ok(), "stored {stored} breaks the rules: {rules:?}");
            let flag = body(app.get(&format!("/Flag/{id}"), &token).await).await;
            let issues = self.profiles.validate("Flag", "Flag", &flag);
            prop_assert!(issues.is_empty(), "its Flag {flag} is invalid: {issues:?}");
        }
        Ok(())
    }
}

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// Runs `property` over `strategy` with a deterministic runner, driving each async case on
/// this multi-threaded runtime.
fn run<S: Strategy>(
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    tokio::task::block_in_place(|| {
        if let Err(e) = runner(cases).run(&strategy, property) {
            panic!("{e}");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_resources_never_break_the_server_or_the_register() {
    let fuzz = Fuzz::start().await;
    let handle = tokio::runtime::Handle::current();
    let strategy = (
        prop::sample::select(ENDPOINTS.to_vec()),
        prop::collection::vec(mutation(), 1..3),
    );
    run(MUTATION_CASES, strategy, |(endpoint, mutations)| {
        handle.block_on(async {
            let n = fuzz.next_case();
            let (method, path, token, mut resource) = fuzz.request(endpoint, n).await;
            for m in &mutations {
                apply(&mut resource, m);
            }
            let bytes = resource.to_string().into_bytes();
            fuzz.check(
                endpoint,
                method,
                &path,
                &token,
                bytes,
                Some("application/fhir+json"),
            )
            .await
        })
    });
    fuzz.report("mutated resources", true);
}

#[derive(Debug, Clone)]
enum Bytes {
    /// Anything at all.
    Random(Vec<u8>),
    /// A valid body with some bytes overwritten and perhaps cut short.
    Corrupted(Vec<(usize, u8)>, Option<usize>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bytes_never_break_the_server_or_the_register() {
    let fuzz = Fuzz::start().await;
    let handle = tokio::runtime::Handle::current();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::Random),
        (
            prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            prop::option::of(any::<usize>())
        )
            .prop_map(|(flips, cut)| Bytes::Corrupted(flips, cut)),
    ];
    let content_type = prop::sample::select(vec![
        Some("application/fhir+json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        None,
    ]);
    let strategy = (
        prop::sample::select(ENDPOINTS.to_vec()),
        bytes,
        content_type,
    );
    run(BYTES_CASES, strategy, |(endpoint, bytes, content_type)| {
        handle.block_on(async {
            let n = fuzz.next_case();
            let (method, path, token, resource) = fuzz.request(endpoint, n).await;
            let bytes = match bytes {
                Bytes::Random(b) => b,
                Bytes::Corrupted(flips, cut) => {
                    let mut b = resource.to_string().into_bytes();
                    for (at, byte) in flips {
                        let len = b.len();
                        b[at % len] = byte;
                    }
                    if let Some(cut) = cut {
                        b.truncate(cut % (b.len() + 1));
                    }
                    b
                }
            };
            fuzz.check(endpoint, method, &path, &token, bytes, content_type)
                .await
        })
    });
    fuzz.report("arbitrary bytes", false);
}
