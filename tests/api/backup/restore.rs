//! What `cpis restore` refuses, and what it leaves as it was.

use super::*;

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
