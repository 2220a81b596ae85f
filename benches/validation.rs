//! What validation costs: compiling the profiles (once, at start), then per plan the profile
//! and the business rules (what `PlanInput::check` does for every write), for a valid plan and
//! for an invalid one; then the share of validation in a plan upload written through the same
//! service code as the API, on a temporary SQLite database. Figures are printed, not asserted.
//!
//! `cargo bench --bench validation [-- <plans to validate> <plans to write>]` (defaults
//! 20000 and 2000)

use std::time::{Duration, Instant};

use cpis::auth::Identity;
use cpis::auth::{Caller, Role};
use cpis::fhir::NhsNumber;
use cpis::service::{
    self,
    plan::{PlanInput, PlanWrites},
};
use cpis::validation::Profiles;
use serde_json::{json, Value};

const LA: &str = "E09000030";

fn plan(nhs: &str, reference: &str) -> Value {
    json!({
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": "https://fhir.e09000030.gov.uk/Id/plan", "value": reference}],
        "status": "active",
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101", "display": "Subject to child protection plan"}]}],
        "patient": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}},
        "managingOrganization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": LA}},
        "period": {"start": "2026-01-05", "end": "2027-01-04"}
    })
}

/// A plan with five problems: a reason, a bad check digit, an unknown status, a wrong display
/// and an end before the start.
fn invalid_plan() -> Value {
    json!({
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": "https://fhir.e09000030.gov.uk/Id/plan", "value": "P-BAD"}],
        "status": "planned",
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101", "display": "Child in need"}]}],
        "patient": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9449306754"}},
        "managingOrganization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": LA}},
        "period": {"start": "2026-01-05", "end": "2025-01-01"},
        "reason": [{"text": "not shared"}]
    })
}

/// Mean and 99th percentile, in microseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let total: Duration = samples.iter().sum();
    let mean = total.as_secs_f64() * 1e6 / samples.len().max(1) as f64;
    let p99 = samples
        .get(samples.len() * 99 / 100)
        .or(samples.last())
        .map_or(0.0, |d| d.as_secs_f64() * 1e6);
    (mean, p99)
}

fn time_each(n: usize, body: &Value, mut f: impl FnMut(Value) -> bool) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let input = body.clone();
            let started = Instant::now();
            let expected = f(input);
            let elapsed = started.elapsed();
            assert!(expected, "unexpected validation result");
            elapsed
        })
        .collect()
}

fn caller(role: Role) -> Caller {
    Caller(Identity {
        sub: "bench".into(),
        role,
        name: Some("Bench".into()),
        org: Some(LA.into()),
        org_name: None,
        job_role: None,
        job_role_code: None,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let validations = args.first().copied().unwrap_or(20_000);
    let writes = args.get(1).copied().unwrap_or(2_000);

    let started = Instant::now();
    let profiles = Profiles::load()?;
    println!(
        "compiling {} profiles: {:.1} ms (once, at start)",
        profiles.names().len(),
        started.elapsed().as_secs_f64() * 1e3
    );

    let valid = plan("9449306753", "P-1");
    let invalid = invalid_plan();
    let report = |label: &str, samples: &mut Vec<Duration>| {
        let (mean, p99) = summary(samples);
        println!(
            "{label:<40} mean {mean:>7.1} µs   p99 {p99:>7.1} µs   ({} runs)",
            samples.len()
        );
    };
    // Warm up allocator and caches.
    time_each(validations / 10, &valid, |v| {
        PlanInput::check(&profiles, v).is_ok()
    });
    report(
        "valid plan: profile only",
        &mut time_each(validations, &valid, |v| {
            profiles
                .validate("EpisodeOfCare", "EpisodeOfCare", &v)
                .is_empty()
        }),
    );
    report(
        "valid plan: profile + business rules",
        &mut time_each(validations, &valid, |v| {
            PlanInput::check(&profiles, v).is_ok()
        }),
    );
    report(
        "invalid plan (5 problems): all reported",
        &mut time_each(validations, &invalid, |v| {
            PlanInput::check(&profiles, v).is_err()
        }),
    );

    validation_share_of_an_upload(&profiles, writes)
}

/// The share of validation in an upload: each plan validated, then written (plan + Flag in
/// one transaction) through the service the API uses.
fn validation_share_of_an_upload(
    profiles: &Profiles,
    writes: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let pool = cpis::db::pool(
        &format!("sqlite://{}/bench.db", dir.path().display()),
        2,
        Duration::from_secs(10),
    )?;
    let mut conn = pool.get()?;
    cpis::db::migrate(&mut conn)?;
    let now = cpis::clock::Clock::system().now_ms();
    let org = json!({
        "resourceType": "Organization",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": LA}],
        "name": "Bench LA",
        "telecom": [{"system": "phone", "value": "0100", "use": "work"}, {"system": "phone", "value": "0999", "use": "mobile"}]
    });
    let la = service::organization::check(profiles, &org)?;
    service::organization::create(&mut conn, &caller(Role::Operations), org, la, now)?;
    let social = caller(Role::SocialCare);
    let (mut validating, mut writing) = (Duration::ZERO, Duration::ZERO);
    let mut stem = 100_000_000u64;
    for i in 0..writes {
        let nhs = loop {
            stem += 1;
            if let Some(n) = NhsNumber::from_stem(stem) {
                break n;
            }
        };
        let body = plan(nhs.as_str(), &format!("P-{i}"));
        let started = Instant::now();
        let input = PlanInput::check(profiles, body)?;
        let checked = Instant::now();
        service::plan::create(
            &mut conn,
            &mut PlanWrites::alone(&social, now),
            &input,
            None,
        )?;
        validating += checked - started;
        writing += checked.elapsed();
    }
    let total = validating + writing;
    println!(
        "upload of {writes} plans (SQLite, one transaction each): {:.0} plans/s; validation \
         {:.1}% of the time ({:.1} µs of {:.1} µs per plan); without it {:.0} plans/s",
        writes as f64 / total.as_secs_f64(),
        validating.as_secs_f64() * 100.0 / total.as_secs_f64(),
        validating.as_secs_f64() * 1e6 / writes as f64,
        total.as_secs_f64() * 1e6 / writes as f64,
        writes as f64 / writing.as_secs_f64(),
    );
    Ok(())
}
