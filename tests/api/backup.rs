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

mod restore;
mod schedule;

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

/// Runs `cpis restore --from FROM --to TO` (TO a SQLite file), off the test's runtime.
async fn restore(from: &Path, to: &Path) -> Output {
    cpis(
        &[
            "restore",
            "--from",
            from.to_str().unwrap(),
            "--to",
            &sqlite_url(to),
        ],
        "sqlite://unused.db",
    )
    .await
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

/// Runs `work` while health care looks up the other LA's child again and again (each lookup
/// audited, each answered 200), from before `work` starts until it ends.
async fn during_lookups<T>(app: &TestApp, work: impl std::future::Future<Output = T>) -> T {
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
    let done = work.await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    done
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
    let taken = during_lookups(
        &app,
        cpis(
            &["backup", "--to", backup.to_str().unwrap()],
            &app.config.database_url,
        ),
    )
    .await;
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
    let done = restore(&backup, &restored).await;
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
            let refused = restore(&path, &target).await;
            let said = text(&refused.stderr);
            assert_eq!(refused.status.code(), Some(1), "{said}");
            assert!(!target.exists(), "{said}");
        }
    }
}
