//! Backups you can restore (issue #30): `cpis backup` copies the live SQLite database while the
//! server serves, checked, sealed, owner-only and renamed into place when whole; `cpis restore`
//! refuses a database a server holds and a backup from a newer schema, checks before and after,
//! and says what it restored; the server takes backups itself on a schedule, keeps the newest N
//! and says how old the last good one is; on PostgreSQL both commands say what to use instead.
//! These run on SQLite whatever engine the suite is on: backups are the embedded default's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpis::backup::schedule::file_name;
use cpis::backup::seal::file_is_sealed;
use cpis::clock::Clock;
use diesel::prelude::*;
use serde_json::Value;

use crate::helpers::*;
use crate::process::{free_port, ServerProcess};

const CHILD: &str = "9449306753";
const OTHER_CHILD: &str = "9000000009";
/// 2026-12-02T10:00:00Z.
const DECEMBER: i64 = 1_796_205_600_000;

/// Runs `cpis ARGS` on `database_url`, off the test's runtime.
async fn cpis(args: &[&str], database_url: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cpis"));
    command
        .args(args)
        .env_clear()
        .env("CPIS_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn database_of(app: &TestApp) -> PathBuf {
    PathBuf::from(app.config.database_url.strip_prefix("sqlite://").unwrap())
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A server on SQLite with an LA, two children's plans, and `lookups` audited lookups of the
/// first child; returns it with how many lookups were answered 200.
async fn app_with_plans(
    lookups: usize,
    customise: impl FnOnce(&mut cpis::config::Config),
) -> TestApp {
    let app = TestApp::spawn_on(Engine::Sqlite, customise).await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json(CHILD, LA_A, "BK-1")).await;
    app.create_plan(&plan_json(OTHER_CHILD, LA_B, "BK-2")).await;
    for n in 0..lookups {
        let res = app
            .get(
                &format!("/Flag?patient:identifier={NHS}|{CHILD}"),
                &clinician(&app, n),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    app
}

/// A query's rows on a database file, read-only.
fn ids(path: &Path, sql: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut c = cpis::backup::inspect::open_read_only(path).unwrap();
    diesel::sql_query(sql)
        .load::<Id>(&mut c)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Every resource of a search, following `next` links, without the server-specific parts.
async fn resources(base: &str, query: &str, token: &str) -> Vec<Value> {
    let client = reqwest::Client::new();
    let mut url = Some(format!("{base}/{query}"));
    let mut found = Vec::new();
    while let Some(next) = url.take() {
        let res = client.get(&next).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200, "{next}");
        let bundle: Value = res.json().await.unwrap();
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            found.push(entry["resource"].clone());
        }
        url = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    found
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A value of `count=N` / `plans=N` in a command's output.
fn field(output: &str, name: &str) -> String {
    output
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {output}"))
        .to_string()
}

#[tokio::test]
async fn a_backup_taken_while_the_server_serves_is_checked_sealed_and_owner_only_and_restores_what_was_acknowledged(
) {
    let app = app_with_plans(6, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("cpis-backup.db");
    let acknowledged = ids(
        &database_of(&app),
        "SELECT id FROM audit_events ORDER BY id",
    );
    assert!(acknowledged.len() >= 6);
    let la_pull_before = resources(&app.base, "AuditEvent?_count=500", &app.social(LA_A)).await;

    // Audited lookups of the other LA's child go on while the copy is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, answered) = (stop.clone(), answered.clone());
        let (url, token) = (
            app.url(&format!("/Flag?patient:identifier={NHS}|{OTHER_CHILD}")),
            app.health(),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                let res = client.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(res.status(), 200);
                answered.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while answered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let taken = cpis(
        &["backup", "--to", backup.to_str().unwrap()],
        &app.config.database_url,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let out = text(&taken.stdout);
    assert_eq!(taken.status.code(), Some(0), "{out}{}", text(&taken.stderr));
    assert!(
        out.starts_with(&format!("backup {}", backup.display())),
        "{out}"
    );
    assert!(
        out.contains("integrity=ok") && out.contains("sealed"),
        "{out}"
    );
    assert_eq!(field(&out, "plans"), "2", "{out}");
    assert!(field(&out, "accesses").parse::<usize>().unwrap() >= acknowledged.len());
    assert_eq!(mode_of(&backup), 0o600, "owner-only");
    assert!(file_is_sealed(&backup));
    assert_eq!(
        names_in(dir.path()),
        vec!["cpis-backup.db"],
        "nothing partial left"
    );

    let restored = dir.path().join("restored/cpis.db");
    let done = cpis(
        &[
            "restore",
            "--from",
            backup.to_str().unwrap(),
            "--to",
            &sqlite_url(&restored),
        ],
        "sqlite://unused.db",
    )
    .await;
    let out = text(&done.stdout);
    assert_eq!(done.status.code(), Some(0), "{out}{}", text(&done.stderr));
    assert!(
        out.starts_with(&format!("restored {}", restored.display())),
        "{out}"
    );
    assert_eq!(field(&out, "plans"), "2", "{out}");
    assert!(field(&out, "newest_access").starts_with("20"), "{out}");
    assert!(
        !file_is_sealed(&restored),
        "the live file never carries the seal"
    );
    assert_eq!(mode_of(&restored), 0o600);
    let in_restored = ids(&restored, "SELECT id FROM audit_events ORDER BY id");
    assert_eq!(
        field(&out, "accesses").parse::<usize>().unwrap(),
        in_restored.len()
    );
    for id in &acknowledged {
        assert!(
            in_restored.contains(id),
            "AuditEvent {id} acknowledged before the backup"
        );
    }

    // The restored database, served, answers as the original did.
    let mut config = app.config.clone();
    config.database_url = sqlite_url(&restored);
    let server = ServerProcess::start(&config, &[]).await;
    let la_pull_after = resources(&server.base, "AuditEvent?_count=500", &app.social(LA_A)).await;
    assert_eq!(la_pull_after, la_pull_before, "the LA's pull");
    for (child, la) in [(CHILD, LA_A), (OTHER_CHILD, LA_B)] {
        let query = format!("Flag?patient:identifier={NHS}|{child}&_include=Flag:author");
        assert_eq!(
            resources(&server.base, &query, &app.social(la)).await,
            resources(&app.base, &query, &app.social(la)).await,
            "{child}'s Flags"
        );
    }
}

#[tokio::test]
async fn on_postgresql_backup_and_restore_say_what_to_use_instead_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("cpis.db");
    let url = "postgres://cpis@localhost/cpis";
    let backup = cpis(&["backup", "--to", to.to_str().unwrap()], url).await;
    let restore = cpis(
        &["restore", "--from", to.to_str().unwrap(), "--to", url],
        url,
    )
    .await;
    for (what, output) in [("backup", backup), ("restore", restore)] {
        let said = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{what}: {said}");
        for words in [
            "PostgreSQL",
            "pg_dump",
            "pg_restore",
            "pg_basebackup",
            "point-in-time",
            "README",
        ] {
            assert!(said.contains(words), "{what} names {words}: {said}");
        }
    }
    assert!(names_in(dir.path()).is_empty());
}

#[tokio::test]
async fn restore_refuses_while_a_server_holds_the_target_and_changes_nothing() {
    let app = app_with_plans(2, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("b.db");
    let taken = cpis(
        &["backup", "--to", backup.to_str().unwrap()],
        &app.config.database_url,
    )
    .await;
    assert_eq!(taken.status.code(), Some(0), "{}", text(&taken.stderr));
    // The server goes on and records more after the backup.
    app.create_plan(&plan_json("9912003888", LA_A, "BK-3"))
        .await;
    let plans = app.count_where("resources", "resource_type = 'EpisodeOfCare'");

    let refused = cpis(
        &[
            "restore",
            "--from",
            backup.to_str().unwrap(),
            "--to",
            &app.config.database_url,
            "--replace",
        ],
        "sqlite://unused.db",
    )
    .await;
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("in use") && said.contains("Stop it first"),
        "{said}"
    );
    assert_eq!(
        app.count_where("resources", "resource_type = 'EpisodeOfCare'"),
        plans
    );
    assert_eq!(app.flags_of("9912003888").await["total"], 1, "still served");

    // A database nobody holds is replaced, but only when asked to.
    let other = sqlite_url(&dir.path().join("other.db"));
    let from = backup.to_str().unwrap();
    let first = cpis(
        &["restore", "--from", from, "--to", &other],
        "sqlite://unused.db",
    )
    .await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let again = cpis(
        &["restore", "--from", from, "--to", &other],
        "sqlite://unused.db",
    )
    .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("--replace"),
        "{}",
        text(&again.stderr)
    );
    let replaced = cpis(
        &["restore", "--from", from, "--to", &other, "--replace"],
        "sqlite://unused.db",
    )
    .await;
    assert_eq!(
        replaced.status.code(),
        Some(0),
        "{}",
        text(&replaced.stderr)
    );
}

#[tokio::test]
async fn restore_refuses_a_backup_from_a_newer_schema() {
    let app = app_with_plans(1, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("b.db");
    let taken = cpis(
        &["backup", "--to", backup.to_str().unwrap()],
        &app.config.database_url,
    )
    .await;
    assert_eq!(taken.status.code(), Some(0), "{}", text(&taken.stderr));
    // As a later cpis would have left it: one migration more.
    let mut c = SqliteConnection::establish(backup.to_str().unwrap()).unwrap();
    diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')")
        .execute(&mut c)
        .unwrap();
    drop(c);
    assert!(file_is_sealed(&backup));

    let target = dir.path().join("restored.db");
    let refused = cpis(
        &[
            "restore",
            "--from",
            backup.to_str().unwrap(),
            "--to",
            &sqlite_url(&target),
        ],
        "sqlite://unused.db",
    )
    .await;
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("newer schema") && said.contains("29991231000000"),
        "{said}"
    );
    assert!(!target.exists());
    assert_eq!(names_in(dir.path()), vec!["b.db"]);
}

/// SIGKILL as soon as the copy has begun to be written: whenever it lands, no file under the
/// backup's name exists unless finished, and what is left is named a partial copy, has no seal
/// and is refused by `cpis restore`.
#[tokio::test]
async fn a_backup_killed_midway_leaves_no_file_that_looks_complete() {
    let app = app_with_plans(1, |_| {}).await;
    {
        // About 80 MB, so that the copy takes a while.
        let mut conn = app.pool.get().unwrap();
        diesel::sql_query("CREATE TABLE ballast (bytes BLOB NOT NULL)")
            .execute(&mut **conn)
            .unwrap();
        diesel::sql_query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO ballast SELECT randomblob(4000) FROM n",
        )
        .execute(&mut **conn)
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("k.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpis"))
        .args(["backup", "--to", backup.to_str().unwrap()])
        .env_clear()
        .env("CPIS_DATABASE_URL", &app.config.database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial_started = |dir: &Path| {
        // The copy itself (not the journal SQLite keeps beside it), once well under way.
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains(".partial-")
                && !name.ends_with("-journal")
                && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
        })
    };
    let started = Instant::now();
    while !partial_started(dir.path()) {
        assert!(
            child.try_wait().unwrap().is_none() || partial_started(dir.path()),
            "the backup ended before its copy was seen"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no copy began");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let left = names_in(dir.path());
    eprintln!("left after the SIGKILL: {left:?}");
    for name in left {
        let path = dir.path().join(&name);
        if name == "k.db" {
            // The kill came after the rename: then it is whole and checked.
            assert!(file_is_sealed(&path));
            continue;
        }
        assert!(name.starts_with(".k.db.partial-"), "{name}");
        if !name.ends_with("-journal") && !file_is_sealed(&path) {
            let target = dir.path().join("from-partial.db");
            let refused = cpis(
                &[
                    "restore",
                    "--from",
                    path.to_str().unwrap(),
                    "--to",
                    &sqlite_url(&target),
                ],
                "sqlite://unused.db",
            )
            .await;
            let said = text(&refused.stderr);
            assert_eq!(refused.status.code(), Some(1), "{said}");
            assert!(!target.exists(), "{said}");
        }
    }
}

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
