//! Backups the server takes itself: kept, counted, failed loudly, and refused where they
//! cannot work.

use super::*;

/// The metrics as `name{labels} value` lines: the value of the first sample of `name` whose
/// line contains `labels`.
async fn metric(app: &TestApp, name: &str, labels: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", app.address))
        .bearer_auth(app.ops())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .find(|l| l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(-1.0, |v| v.parse().unwrap())
}

async fn ready(address: &str) -> Value {
    let res = reqwest::get(format!("{address}/_ready")).await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn await_backups(app: &TestApp, outcome: &str, at_least: f64) {
    let started = Instant::now();
    while metric(app, "cpis_backups_total", &format!("outcome=\"{outcome}\"")).await < at_least {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {outcome} backup"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sealed file under a backup's name, as an earlier backup left it.
fn old_backup(dir: &Path, at_ms: i64) {
    let path = dir.join(file_name(at_ms));
    let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query("CREATE TABLE t (x INTEGER)")
        .execute(&mut c)
        .unwrap();
    drop(c);
    cpis::backup::seal::set(&path, true).unwrap();
}

#[tokio::test]
async fn scheduled_backups_keep_the_newest_n_and_report_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let (y2020, y2021) = (1_577_836_800_000, 1_609_459_200_000);
    old_backup(&backups, y2020);
    old_backup(&backups, y2021);
    std::fs::write(backups.join("notes.txt"), b"not a backup").unwrap();
    let clock = Clock::fixed(DECEMBER);
    let schedule = cpis::backup::Schedule {
        dir: backups.clone(),
        every: Duration::from_secs(24 * 3600),
        keep: 2,
    };
    let app = app_with_plans(1, |c| {
        c.clock = clock.clone();
        c.backup = Some(schedule);
    })
    .await;

    // The newest backup there is from 2021: one is due at once.
    await_backups(&app, "ok", 1.0).await;
    let first = file_name(DECEMBER);
    assert_eq!(
        names_in(&backups),
        vec![file_name(y2021), first.clone(), "notes.txt".to_string()]
    );
    let size = std::fs::metadata(backups.join(&first)).unwrap().len();
    assert_eq!(mode_of(&backups.join(&first)), 0o600);
    assert!(file_is_sealed(&backups.join(&first)));
    clock.set(DECEMBER + 90_000);
    let details = ready(&app.address).await;
    assert_eq!(details["status"], "ready");
    assert_eq!(details["backup"]["last_good"]["file"], first.as_str());
    assert_eq!(details["backup"]["last_good"]["size_bytes"], size);
    assert_eq!(details["backup"]["last_good"]["age_seconds"], 90);
    assert_eq!(details["backup"]["keep"], 2);
    assert_eq!(details["backup"]["failing"], false);
    assert_eq!(
        metric(&app, "cpis_backup_last_success_age_seconds", "").await,
        90.0
    );
    assert_eq!(
        metric(&app, "cpis_backup_last_success_size_bytes", "").await,
        size as f64
    );
    assert_eq!(
        metric(&app, "cpis_backup_last_success_timestamp_seconds", "").await,
        (DECEMBER / 1000) as f64
    );

    // A day later, the next; the 2021 one goes.
    let next_day = DECEMBER + 24 * 3600 * 1000 + 1000;
    clock.set(next_day);
    await_backups(&app, "ok", 2.0).await;
    assert_eq!(
        names_in(&backups),
        vec![first, file_name(next_day), "notes.txt".to_string()]
    );
    let restored = dir.path().join("restored.db");
    let done = cpis(
        &[
            "restore",
            "--from",
            backups.join(file_name(next_day)).to_str().unwrap(),
            "--to",
            &sqlite_url(&restored),
        ],
        "sqlite://unused.db",
    )
    .await;
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    assert_eq!(field(&text(&done.stdout), "plans"), "2");
}

/// The backup directory cannot be made (a file stands where it would be): the failure is logged
/// as an error, shown by `/_ready` (still 200) and `/metrics`, and the server serves on.
#[tokio::test]
async fn a_scheduled_backup_that_fails_is_logged_loudly_and_the_server_serves_on() {
    let app = app_with_plans(0, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"in the way").unwrap();
    let backups = dir.path().join("file/backups");
    let log = dir.path().join("server.log");
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_cpis"))
        .arg("serve")
        .env_clear()
        .env("CPIS_DATABASE_URL", &app.config.database_url)
        .env("CPIS_BIND", format!("127.0.0.1:{port}"))
        .env("CPIS_JWT_SECRET", "test-secret-for-cpis-integration-tests")
        .env("CPIS_JWT_ISSUER", app.config.jwt_issuer.as_deref().unwrap())
        .env("CPIS_WORKERS", "2")
        .env("CPIS_DB_POOL_SIZE", "4")
        .env("CPIS_BACKUP_DIR", &backups)
        .env("CPIS_BACKUP_EVERY", "24h")
        .env("CPIS_BACKUP_KEEP", "3")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    // The scheduler counts an attempt once it has recorded it for /_ready.
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no failure counted"
        );
        let scrape = reqwest::Client::new()
            .get(format!("{address}/metrics"))
            .bearer_auth(app.ops())
            .send()
            .await;
        if let Ok(res) = scrape {
            let text = res.text().await.unwrap();
            if text.contains("cpis_backups_total{outcome=\"failed\"} 1") {
                assert!(
                    text.contains("cpis_backups_total{outcome=\"ok\"} 0"),
                    "{text}"
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let details = ready(&address).await;
    assert_eq!(details["status"], "ready");
    assert_eq!(details["backup"]["failing"], true, "{details}");
    assert_eq!(details["backup"]["last_good"], Value::Null);
    assert!(
        details["backup"]["last_failure"]["at"].is_string(),
        "{details}"
    );
    let lookup = reqwest::Client::new()
        .get(format!(
            "{address}/FHIR/R4/Flag?patient:identifier={NHS}|{CHILD}"
        ))
        .bearer_auth(app.health())
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status(), 200, "the server serves on");
    server.kill().unwrap();
    server.wait().unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    let line = logged
        .lines()
        .find(|l| l.contains("BACKUP FAILED"))
        .unwrap_or_else(|| panic!("no BACKUP FAILED in the log: {logged}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("cannot create the backup directory"),
        "{line}"
    );
}

#[tokio::test]
async fn scheduled_backups_are_refused_at_start_on_postgresql_or_with_a_bad_interval() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().to_str().unwrap();
    let sqlite = sqlite_url(&dir.path().join("cpis.db"));
    for (url, every, refused) in [
        ("postgres://cpis@localhost/cpis", "24h", "CPIS_BACKUP_DIR"),
        (sqlite.as_str(), "10x", "CPIS_BACKUP_EVERY"),
        (sqlite.as_str(), "0s", "CPIS_BACKUP_EVERY"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cpis"));
        command
            .arg("migrate")
            .env_clear()
            .env("CPIS_DATABASE_URL", url)
            .env("CPIS_BACKUP_DIR", backups)
            .env("CPIS_BACKUP_EVERY", every);
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        let said = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{url} {every}: {said}");
        assert!(said.contains(refused), "{said}");
    }
}
