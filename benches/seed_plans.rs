//! Seeds a database with N plans (one LA per 1,000 plans, NHS numbers from a counter) through
//! the same service code the API uses, and writes the NHS numbers to a file for the load test.
//!
//! `cargo bench --bench seed_plans -- <database-url> <plans> <nhs-numbers-file>`

use std::io::Write;
use std::time::Instant;

use cpis::auth::jwt::Identity;
use cpis::auth::{Caller, Role};
use cpis::fhir::NhsNumber;
use cpis::service::{self, plan::PlanInput};
use cpis::validation::Profiles;
use serde_json::json;

fn caller(role: Role, org: &str) -> Caller {
    Caller(Identity {
        sub: "bench".into(),
        role,
        name: Some("Bench".into()),
        org: Some(org.into()),
        org_name: None,
        job_role: None,
        job_role_code: None,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [url, plans, out] = args.as_slice() else {
        return Err("usage: seed_plans <database-url> <plans> <nhs-numbers-file>".into());
    };
    let plans: u64 = plans.parse()?;
    let pool = cpis::db::pool(url, 2, std::time::Duration::from_secs(10))?;
    let mut conn = pool.get()?;
    cpis::db::migrate(&mut conn)?;
    let profiles = Profiles::load()?;
    let now = service::now_ms();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let started = Instant::now();
    let mut stem = 100_000_000u64;
    for i in 0..plans {
        let ods = format!("B{:05}", i / 1000);
        if i % 1000 == 0 {
            let org = json!({
                "resourceType": "Organization",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}],
                "name": format!("Bench LA {ods}"),
                "telecom": [{"system": "phone", "value": "0100", "use": "work"}, {"system": "phone", "value": "0999", "use": "mobile"}]
            });
            let la = service::organization::check(&profiles, &org)?;
            service::organization::create(
                &mut conn,
                &caller(Role::Operations, "X26"),
                org,
                la,
                now,
            )?;
        }
        let nhs = loop {
            stem += 1;
            if let Some(n) = NhsNumber::from_stem(stem) {
                break n;
            }
        };
        let plan = json!({
            "resourceType": "EpisodeOfCare",
            "identifier": [{"system": format!("https://fhir.{}.gov.uk/Id/plan", ods.to_lowercase()), "value": format!("P-{i}")}],
            "status": "active",
            "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
            "patient": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs.as_str()}},
            "managingOrganization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}},
            "period": {"start": "2026-01-05"}
        });
        let input = PlanInput::check(&profiles, plan)?;
        service::plan::create(
            &mut conn,
            &caller(Role::SocialCare, &ods),
            &input,
            None,
            now,
        )?;
        writeln!(file, "{}", nhs.as_str())?;
        if (i + 1) % 10_000 == 0 {
            eprintln!(
                "seeded {} plans in {:.1}s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    file.flush()?;
    // Planner statistics, as a production database would have after `PRAGMA optimize`.
    if let cpis::db::DbConn::Sqlite(c) = &mut *conn {
        use diesel::RunQueryDsl;
        diesel::sql_query("ANALYZE").execute(c)?;
    }
    eprintln!(
        "seeded {plans} plans in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
