//! The database a test runs on: a SQLite file in a temporary directory, or a fresh
//! PostgreSQL schema, dropped when the test ends.

use super::*;

/// The database a test runs on, removed when the test ends.
pub(super) enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, schema } = self {
            if let Ok(mut conn) = cpis::db::connect_postgres(admin_url) {
                let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut conn);
            }
        }
    }
}

/// `postgres` when the suite must run on PostgreSQL (`CPIS_TEST_ENGINE=postgres`): then a
/// missing `CPIS_TEST_DATABASE_URL` is an error, never a silent fall-back to SQLite.
fn postgres_url() -> Option<String> {
    let url = std::env::var("CPIS_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if std::env::var("CPIS_TEST_ENGINE").as_deref() == Ok("postgres") {
        assert!(
            url.is_some(),
            "CPIS_TEST_ENGINE=postgres but CPIS_TEST_DATABASE_URL is not set"
        );
    }
    url
}

pub(super) fn fresh_database(engine: Engine) -> (String, TestDb) {
    let postgres = match engine {
        Engine::UnderTest => postgres_url(),
        Engine::Sqlite => None,
    };
    match postgres {
        Some(admin_url) => {
            let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = cpis::db::connect_postgres(&admin_url)
                .expect("connect to the PostgreSQL test server");
            diesel::sql_query(format!("CREATE SCHEMA {schema}"))
                .execute(&mut conn)
                .expect("create test schema");
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            // Named after the schema, so that a test can tell its own server's sessions.
            let url = format!(
                "{admin_url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
            );
            (url, TestDb::Postgres { admin_url, schema })
        }
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/cpis.db", dir.path().display());
            (url, TestDb::Sqlite(dir))
        }
    }
}

/// Which engine a test app runs on.
#[derive(Clone, Copy)]
pub enum Engine {
    /// The one the suite runs on (`CPIS_TEST_DATABASE_URL`).
    UnderTest,
    /// SQLite whatever the suite runs on, for a test of SQLite itself (its query planner).
    Sqlite,
}
