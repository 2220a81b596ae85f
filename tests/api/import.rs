//! `cpis import` (issue #5): a CSV of plans sent as batch uploads, over HTTP or straight into
//! the database, with the rejected rows listed by line and reason; importing again changes
//! nothing.

use std::io::Write;
use std::process::{Command, Output};

use crate::helpers::*;

const CSV: &str = "nhs_number,plan_type,start,end,plan_reference\n\
    9449306753,CPP,2026-01-05,,IMP-1\n\
    9000000009,LAC,2025-06-01,2026-06-01,IMP-2\n\
    9912003888,UCPP,2026-02-01,,IMP-3\n\
    9449306754,CPP,2026-01-05,,IMP-4\n\
    9449306753,XYZ,2026-01-05,,IMP-5\n\
    9000000009,CPP,2026-03-01,2026-02-01,IMP-6\n";

fn csv_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(CSV.as_bytes()).unwrap();
    file
}

/// Runs `cpis import` on the CSV (over HTTP to the app when `over_http`), off the test's
/// runtime so that the app can answer meanwhile.
async fn import(app: &TestApp, file: &tempfile::NamedTempFile, over_http: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cpis"));
    command
        .args([
            "import",
            "--file",
            file.path().to_str().unwrap(),
            "--org",
            LA_A,
        ])
        .env_clear()
        .env("CPIS_DATABASE_URL", &app.config.database_url)
        .env("CPIS_JWT_SECRET", "unused-by-import-but-thirty-two-bytes")
        .env("RUST_LOG", "warn");
    if over_http {
        command.args(["--url", &app.base, "--token", &app.social(LA_A)]);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn check_summary(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        output.status.code(),
        Some(4),
        "some rows rejected: {output:?}"
    );
    assert_eq!(lines[0], "rows=6 accepted=3 rejected=3", "{stdout}");
    assert!(
        lines[1].starts_with(
            "line 5: 422 Unprocessable Entity: EpisodeOfCare.patient.identifier.value: "
        ),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        "line 6: plan_type \"XYZ\" is not CPP, LAC or UCPP"
    );
    assert!(
        lines[3].starts_with("line 7: 422 Unprocessable Entity: EpisodeOfCare.period.end: "),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_csv_is_imported_over_http_and_importing_it_again_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let file = csv_file();
    let output = import(&app, &file, true).await;
    check_summary(&output);
    assert_eq!(app.flags_of("9912003888").await["total"], 1);
    let versions = app.count_rows("resource_versions");
    let reports = app.count_rows("upload_reports");
    let again = import(&app, &file, true).await;
    check_summary(&again);
    assert_eq!(
        app.count_rows("resource_versions"),
        versions,
        "no new versions"
    );
    assert_eq!(
        app.count_rows("upload_reports"),
        reports + 1,
        "each batch is a report"
    );
}

#[tokio::test]
async fn a_csv_is_imported_straight_into_the_database() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let file = csv_file();
    let output = import(&app, &file, false).await;
    check_summary(&output);
    assert_eq!(app.flags_of("9449306753").await["total"], 1);
}
