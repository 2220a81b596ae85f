//! Storage on both engines: migrations go down and up again; column types round-trip.

use chrono::TimeZone;
use cpis::auth::Role;
use cpis::db::{self, models::ResourceRow, store};
use cpis::fhir::types::ODS_SYSTEM;
use diesel::RunQueryDsl;

use crate::helpers::*;

#[tokio::test]
async fn migrations_revert_and_reapply() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    db::revert_all(&mut conn).unwrap();
    assert!(db::migrate(&mut conn).unwrap() > 0);
    assert_eq!(db::migrate(&mut conn).unwrap(), 0, "idempotent");
}

/// Accesses recorded as whole JSON documents, before accesses were stored as columns (#16),
/// are still served as they were kept, with the LAs they were shown to.
#[tokio::test]
async fn accesses_recorded_before_compact_storage_survive_its_migration() {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    let reverted = db::revert_through(&mut conn, "2026-12-02-000000_compact_audit_events").unwrap();
    let document =
        r#"{"resourceType":"AuditEvent","id":"legacy-1","recorded":"2026-11-30T10:00:00Z"}"#;
    let legacy = format!(
        "INSERT INTO audit_events (id, recorded_ms, nhs_number, agent_sub, agent_org, care_setting, \
         accessor_role, shown, content) VALUES ('legacy-1', 1796032800000, '9449306753', '5550', 'RJ1', \
         'unscheduled', 'health-care', TRUE, '{document}'); \
         INSERT INTO audit_event_las (la_ods, recorded_ms, audit_event_id, shown) \
         VALUES ('E09000030', 1796032800000, 'legacy-1', TRUE), ('E08000025', 1796032800000, 'legacy-1', FALSE);"
    );
    match &mut **conn {
        db::DbConn::Sqlite(c) => c.batch_execute(&legacy),
        db::DbConn::Postgres(c) => c.batch_execute(&legacy),
    }
    .unwrap();
    assert_eq!(db::migrate(&mut conn).unwrap(), reverted);
    let stored = db::audit::find(&mut conn, "legacy-1").unwrap().unwrap();
    assert_eq!(
        cpis::audit::render(&stored.access, cpis::audit::Audience::Whole).unwrap(),
        document
    );
    let mut las: Vec<(String, bool)> = stored
        .las
        .into_iter()
        .map(|la| (la.la_ods, la.shown))
        .collect();
    las.sort();
    assert_eq!(
        las,
        vec![
            ("E08000025".to_string(), false),
            ("E09000030".to_string(), true)
        ]
    );
}

/// PostgreSQL connections the server dropped while idle (a restart, a firewall's timeout) are
/// replaced before a request meets them: the pool's and the audit writer's alike. One in
/// steady use is not pinged first (that was a round trip per request).
#[tokio::test]
async fn connections_the_database_dropped_while_idle_are_replaced_before_use() {
    let app = TestApp::spawn().await;
    if !matches!(&mut **app.pool.get().unwrap(), db::DbConn::Postgres(_)) {
        return; // SQLite's connections are files
    }
    let nhs = "9449306753";
    app.create_la("E09000030").await;
    app.create_plan(&plan_json(nhs, "E09000030", "P-1")).await;
    let health = clinician(&app, 1);
    let path = format!("/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}");
    let lookup = || app.get(&path, &health);
    assert_eq!(lookup().await.status(), 200);
    {
        let mut admin = app.pool.get().unwrap();
        let db::DbConn::Postgres(pg) = &mut **admin else {
            unreachable!()
        };
        #[derive(diesel::QueryableByName)]
        struct Terminated {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let terminated: Terminated = diesel::sql_query(
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE application_name = current_setting('application_name') \
             AND pid <> pg_backend_pid()",
        )
        .get_result(pg)
        .unwrap();
        assert!(
            terminated.n >= 2,
            "the pool's others and the audit writer's"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    for _ in 0..6 {
        assert_eq!(
            lookup().await.status(),
            200,
            "an audited lookup after the drop"
        );
    }
}

#[tokio::test]
async fn every_column_type_round_trips() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    let row = ResourceRow {
        resource_type: "Organization".into(),
        id: "round-trip".into(),
        version_id: 7,
        last_updated: i64::MAX - 1,
        deleted: true,
        content: "{\"name\":\"Ünïcødé – “quotes” 🚑\"}".into(),
    };
    store::insert(&mut conn, &row).unwrap();
    assert_eq!(
        store::current(&mut conn, "Organization", "round-trip").unwrap(),
        Some(row.clone())
    );
    assert_eq!(
        store::version(&mut conn, "Organization", "round-trip", 7).unwrap(),
        Some(row)
    );
    store::claim_identifier(&mut conn, "Organization", ODS_SYSTEM, "X1", "round-trip").unwrap();
    assert!(
        store::claim_identifier(&mut conn, "Organization", ODS_SYSTEM, "X1", "other").is_err(),
        "identifiers are unique"
    );
}

/// On PostgreSQL, the server's connections are encrypted when the URL asks for TLS: CI runs this
/// suite against a server that accepts TLS only (`CPIS_TEST_POSTGRES_TLS=1`), with
/// `sslmode=verify-full`. On SQLite there is no network connection to encrypt.
#[tokio::test]
async fn postgresql_connections_use_tls_when_the_url_asks_for_it() {
    #[derive(diesel::QueryableByName)]
    struct Encrypted {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let required = std::env::var("CPIS_TEST_POSTGRES_TLS").as_deref() == Ok("1");
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    let db::DbConn::Postgres(pg) = &mut **conn else {
        assert!(
            !required,
            "CPIS_TEST_POSTGRES_TLS=1 needs the PostgreSQL suite"
        );
        return;
    };
    use diesel::RunQueryDsl;
    let row: Encrypted =
        diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .get_result(pg)
            .unwrap();
    assert_eq!(
        row.ssl, required,
        "the connection is encrypted exactly when CI requires it"
    );
}

#[tokio::test]
async fn a_graceful_stop_leaves_the_sqlite_wal_empty() {
    let app = TestApp::spawn_on(Engine::Sqlite, |c| c.dispatcher = false).await;
    let mut server = crate::process::ServerProcess::start(&app.config, &[]).await;
    let ops = app.ops();
    for n in 0..20 {
        let res = app
            .client
            .post(format!("{}/Organization", server.base))
            .bearer_auth(&ops)
            .header("Content-Type", "application/fhir+json")
            .body(la_json(&format!("E0900{n:04}")).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let wal = format!(
        "{}-wal",
        app.config.database_url.trim_start_matches("sqlite://")
    );
    assert!(server.terminate().success(), "a clean exit");
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        left, 0,
        "the WAL was checkpointed into the database and emptied"
    );
}

/// Plans indexed before the index tables were keyed by what they are searched by (SQLite
/// WITHOUT ROWID) are found by their child and by their identifier after the tables are
/// rebuilt (down to the old layout and up again, the rows carried both ways).
#[tokio::test]
async fn plans_indexed_before_the_keyed_index_tables_are_found_after_their_migration() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let plan = app
        .create_plan(&plan_json("9449306753", LA_A, "BEFORE"))
        .await;
    let mut conn = app.pool.get().unwrap();
    let reverted =
        db::revert_through(&mut conn, "2026-12-03-000000_index_tables_without_rowid").unwrap();
    assert_eq!(db::migrate(&mut conn).unwrap(), reverted);
    drop(conn);
    let found = body(
        app.get(
            "/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753",
            &app.health(),
        )
        .await,
    )
    .await;
    assert_eq!(found["total"], 1, "{found}");
    let again = app
        .put(
            &format!("/EpisodeOfCare?identifier={}|BEFORE", plan_system(LA_A)),
            &app.social(LA_A),
            &plan_json("9449306753", LA_A, "BEFORE"),
        )
        .await;
    assert_eq!(again.status(), 200, "the identifier still names the plan");
    assert_eq!(body(again).await["id"], plan["id"]);
}

/// A history kept with a copy of the current version (before #16) reads the same after the
/// copies are dropped: every version once, newest first, and each by its number.
#[tokio::test]
async fn histories_kept_with_a_copy_of_the_current_version_read_the_same_after_their_migration() {
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    let plan = app
        .create_plan(&plan_json("9449306753", LA_A, "HISTORY"))
        .await;
    let id = plan["id"].as_str().unwrap();
    let mut changed = plan_json("9449306753", LA_A, "HISTORY");
    changed["period"]["start"] = serde_json::json!("2026-02-01");
    changed["id"] = serde_json::json!(id);
    let res = app
        .put(&format!("/EpisodeOfCare/{id}"), &app.social(LA_A), &changed)
        .await;
    assert_eq!(res.status(), 200);
    let history_path = format!("/EpisodeOfCare/{id}/_history");
    assert_eq!(versions_in(&app, &history_path).await, ["2", "1"]);
    let mut conn = app.pool.get().unwrap();
    let reverted = db::revert_through(
        &mut conn,
        "2026-12-03-000001_history_holds_superseded_versions",
    )
    .unwrap();
    assert_eq!(
        app.count_rows("resource_versions"),
        5,
        "as kept before: v1 and v2 of the plan and its Flag, v1 of the LA"
    );
    assert_eq!(db::migrate(&mut conn).unwrap(), reverted);
    drop(conn);
    assert_eq!(versions_in(&app, &history_path).await, ["2", "1"]);
    for (version, start) in [("1", "2026-01-05"), ("2", "2026-02-01")] {
        let read = app
            .get(
                &format!("/EpisodeOfCare/{id}/_history/{version}"),
                &app.social(LA_A),
            )
            .await;
        assert_eq!(read.status(), 200);
        assert_eq!(body(read).await["period"]["start"], start);
    }
}

/// The versionIds of a history Bundle, in its order.
async fn versions_in(app: &TestApp, path: &str) -> Vec<String> {
    let bundle = body(app.get(path, &app.social(LA_A)).await).await;
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["meta"]["versionId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Accesses recorded before each access noted whether it told any LA keep deciding the 24-hour
/// check after the migration: a view that told a new LA (but was not shown in the history)
/// still keeps that LA from hearing of the same person's next view.
#[tokio::test]
async fn accesses_that_told_an_la_before_the_told_column_still_count_after_its_migration() {
    use cpis::db::schema::audit_events;
    use diesel::prelude::*;
    let app = TestApp::spawn().await;
    app.create_la(LA_A).await;
    app.create_la(LA_B).await;
    app.create_plan(&plan_json("9449306753", LA_A, "TOLD-A"))
        .await;
    let nurse = clinician(&app, 1);
    let look = || async {
        let res = app
            .get(
                "/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753",
                &nurse,
            )
            .await;
        assert_eq!(res.status(), 200);
    };
    look().await; // shown in the history, told LA A
    app.create_plan(&plan_json("9449306753", LA_B, "TOLD-B"))
        .await;
    look().await; // not in the history, told LA B
    let told = |conn: &mut cpis::db::DbConn| -> i64 {
        audit_events::table
            .filter(audit_events::told_las.eq(true))
            .count()
            .get_result(conn)
            .unwrap()
    };
    let mut conn = app.pool.get().unwrap();
    assert_eq!(told(&mut conn), 2);
    let reverted = db::revert_through(
        &mut conn,
        "2026-12-04-000000_accesses_record_whether_they_told_las",
    )
    .unwrap();
    assert_eq!(db::migrate(&mut conn).unwrap(), reverted);
    assert_eq!(
        told(&mut conn),
        2,
        "derived from the LAs each access was shown to"
    );
    drop(conn);
    look().await; // tells nobody: both LAs heard of this person's view today
    assert_eq!(told(&mut app.pool.get().unwrap()), 2);
    assert_eq!(app.count_rows("audit_events"), 3);
}

/// The audit writer's PostgreSQL statements are planned for their values while the statistics
/// describe small audit tables (a generic plan made then scanned them), and keep their plans
/// once `ANALYZE` (autovacuum's, the writer's own, or here a hand-run one) has seen both tables
/// at a real size. SQLite plans as it prepares: always kept.
#[tokio::test]
async fn the_audit_writer_keeps_its_plans_only_once_the_statistics_know_the_audit_tables() {
    use diesel::connection::SimpleConnection;
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        plan_cache_mode: String,
    }
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    let is_postgres = matches!(&**conn, db::DbConn::Postgres(_));
    let settled = db::configure_audit_writer(&mut conn).unwrap();
    if !is_postgres {
        assert!(settled);
        return;
    }
    let mode = |conn: &mut db::DbConn| -> String {
        diesel::sql_query("SHOW plan_cache_mode")
            .get_result::<Mode>(conn)
            .unwrap()
            .plan_cache_mode
    };
    assert!(!settled, "a new database's audit tables are empty");
    assert_eq!(mode(&mut conn), "force_custom_plan");
    let db::DbConn::Postgres(pg) = &mut **conn else {
        unreachable!()
    };
    pg.batch_execute(
        "INSERT INTO audit_events (id, recorded_ms, nhs_number, agent_sub, agent_org, \
         care_setting, accessor_role, shown, content) \
         SELECT 'filled-' || n, n, '9449306753', 'someone', 'RJ1', 'unscheduled', \
         'health-care', FALSE, '' FROM generate_series(1, 12000) AS n; \
         ANALYZE audit_events;",
    )
    .unwrap();
    assert!(
        !db::plan_audit_statements(&mut conn).unwrap(),
        "the LAs of the accesses are still unknown"
    );
    let db::DbConn::Postgres(pg) = &mut **conn else {
        unreachable!()
    };
    pg.batch_execute(
        "INSERT INTO audit_las (la_ods, recorded_ms, event_seq, shown) \
         SELECT 'E09000030', recorded_ms, seq, FALSE FROM audit_events; \
         ANALYZE audit_las;",
    )
    .unwrap();
    assert!(db::plan_audit_statements(&mut conn).unwrap());
    assert_eq!(mode(&mut conn), "force_generic_plan");
}

/// On a new database the audit writer does not wait for autovacuum: once its tables hold
/// 10,000 rows its planner statistics do not know of, it analyses them itself and keeps its
/// plans from then on.
#[tokio::test]
async fn the_audit_writer_analyses_its_tables_once_they_have_grown() {
    use diesel::connection::SimpleConnection;
    #[derive(diesel::QueryableByName)]
    struct Analysed {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        tables: i64,
    }
    let app = TestApp::spawn().await;
    let mut conn = app.pool.get().unwrap();
    let db::DbConn::Postgres(pg) = &mut **conn else {
        return; // SQLite plans each statement as it prepares it: nothing to analyse
    };
    pg.batch_execute(
        "INSERT INTO audit_events (id, recorded_ms, nhs_number, agent_sub, agent_org, \
         care_setting, accessor_role, shown, content) \
         SELECT 'grown-' || n, n, '9449306753', 'someone', 'RJ1', 'unscheduled', \
         'health-care', TRUE, '' FROM generate_series(1, 12000) AS n; \
         INSERT INTO audit_las (la_ods, recorded_ms, event_seq, shown) \
         SELECT 'E09000030', recorded_ms, seq, TRUE FROM audit_events;",
    )
    .unwrap();
    // The activity statistics (the rows counted) reach the shared view when this session
    // next goes idle.
    pg.batch_execute("SELECT pg_stat_force_next_flush()")
        .unwrap();
    let mut settled = false;
    for _ in 0..50 {
        settled = db::plan_audit_statements(&mut conn).unwrap();
        if settled {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        settled,
        "the writer keeps its plans once it has analysed its tables"
    );
    let analysed: Analysed = diesel::sql_query(
        "SELECT count(*) AS tables FROM pg_stat_user_tables \
         WHERE relid IN ('audit_events'::regclass, 'audit_las'::regclass) \
         AND last_analyze IS NOT NULL",
    )
    .get_result(&mut **conn)
    .unwrap();
    assert_eq!(
        analysed.tables, 2,
        "both audit tables analysed by the writer"
    );
}

/// Each access says whether it opened an attendance hour (the first reportable access of its
/// child, setting and hour), so that the audit writer reads only the accesses that decide.
/// Accesses recorded before the column get from its migration the flag the writer gives:
/// the first of each setting's hour, never a repeat in that hour, a scheduled access or an
/// LA's own read.
#[tokio::test]
async fn accesses_recorded_before_the_attendance_hour_column_open_the_hours_the_writer_opens() {
    use cpis::db::schema::audit_events;
    use diesel::prelude::*;
    let start = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
    let clock = cpis::clock::Clock::fixed(start.timestamp_millis());
    let app = TestApp::spawn_with(|c| c.clock = clock.clone()).await;
    app.create_la(LA_A).await;
    app.create_plan(&plan_json("9449306753", LA_A, "HOURS"))
        .await;
    let at = |org: &str, sub: &str| {
        let mut req = token_request(Role::HealthCare, org);
        req.sub = sub.into();
        app.token_for(&req)
    };
    let look = |token: String, unscheduled: bool| {
        let app = &app;
        async move {
            let flag = if unscheduled { "TRUE" } else { "FALSE" };
            let res = app
                .send(
                    reqwest::Method::GET,
                    "/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753",
                    &token,
                    None,
                    &[("IsUnscheduledAccessEvent", flag)],
                )
                .await;
            assert_eq!(res.status(), 200);
        }
    };
    let minute = 60 * 1000;
    look(at("RJ1", "nurse-1"), true).await; // opens RJ1's 10:00 hour
    clock.set(clock.now_ms() + 10 * minute);
    look(at("RJ1", "nurse-2"), true).await; // RJ1 again within the hour
    look(at("RQM", "nurse-3"), true).await; // opens RQM's 10:00 hour
    look(at("RYJ", "nurse-4"), false).await; // scheduled: no attendance
    look(app.social(LA_A), true).await; // the LA's own read: not an access
    clock.set(clock.now_ms() + 60 * minute);
    look(at("RJ1", "nurse-1"), true).await; // opens RJ1's 11:00 hour
    let opened = |conn: &mut cpis::db::DbConn| -> Vec<(String, bool)> {
        audit_events::table
            .order(audit_events::seq)
            .select((audit_events::agent_sub, audit_events::opens_attendance_hour))
            .load(conn)
            .unwrap()
    };
    let mut conn = app.pool.get().unwrap();
    let by_the_writer = opened(&mut conn);
    let flags: Vec<bool> = by_the_writer.iter().map(|(_, opens)| *opens).collect();
    assert_eq!(flags, [true, false, true, false, true], "{by_the_writer:?}");
    let reverted = db::revert_through(
        &mut conn,
        "2026-12-11-000000_the_writers_decisions_read_a_partial_index",
    )
    .unwrap();
    assert_eq!(db::migrate(&mut conn).unwrap(), reverted);
    assert_eq!(opened(&mut conn), by_the_writer);
}
