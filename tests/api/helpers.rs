//! `TestApp`: the real application on a real port, with a fresh database per test: a SQLite
//! file in a temporary directory, or, when `CPIS_TEST_DATABASE_URL` is set, a fresh PostgreSQL
//! schema dropped afterwards. The same tests run on both engines.

use std::sync::{Once, OnceLock};

use cpis::auth::jwt::{JwtAlgorithm, KeyConfig};
use cpis::auth::token::{issue, TokenRequest};
use cpis::auth::Role;
use cpis::config::Config;
use cpis::db::DbPool;
use cpis::startup::Application;
use cpis::validation::Profiles;
use diesel::RunQueryDsl;
use reqwest::{Method, Response, ResponseBuilderExt};
use serde_json::{json, Value};

mod client;
mod conformance;
mod database;
mod fixtures;
pub mod suite_log;

pub use client::*;
pub use conformance::*;
pub use database::Engine;
use database::{fresh_database, TestDb};
pub use fixtures::*;

pub const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const CPP: &str = "342191000000101";
pub const LAC: &str = "764841000000100";
pub const UCPP: &str = "818901000000100";
/// Two local authorities and a hospital.
pub const LA_A: &str = "E09000030";
pub const LA_B: &str = "E08000025";
pub const HOSPITAL: &str = "RJ1";

static TRACING: Once = Once::new();

pub struct TestApp {
    pub address: String,
    /// The tokenless metrics port, when the test configured one (`CPIS_METRICS_BIND`).
    pub metrics_address: Option<std::net::SocketAddr>,
    pub base: String,
    pub client: Client,
    pub pool: DbPool,
    pub config: Config,
    handle: actix_web::dev::ServerHandle,
    dispatcher: cpis::notify::Dispatcher,
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stop the workers; the runtime may already be gone, so do not wait.
        std::mem::drop(handle.stop(false));
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customise: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(Engine::UnderTest, customise).await
    }

    pub async fn spawn_on(engine: Engine, customise: impl FnOnce(&mut Config)) -> TestApp {
        TRACING.call_once(|| {
            if let Some(file) = suite_log::file() {
                suite_log::install(&file);
            } else if std::env::var("TEST_LOG").is_ok() {
                cpis::telemetry::init(false);
            }
        });
        let (url, db) = fresh_database(engine);
        let mut config = Config::for_tests(url);
        customise(&mut config);
        let app = Application::build(config.clone())
            .await
            .expect("build the application");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_address = app.metrics_address();
        let base = app.base_url().to_string();
        let pool = app.pool();
        let handle = app.handle();
        let dispatcher = app.dispatcher();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            metrics_address,
            base,
            client: Client::default(),
            pool,
            config,
            handle,
            dispatcher,
            _db: db,
        }
    }

    pub fn token_for(&self, req: &TokenRequest) -> String {
        let KeyConfig::Secret(secret) = self.config.effective_key() else {
            panic!("tests sign with the HS256 test secret");
        };
        let token = issue(
            req,
            JwtAlgorithm::HS256,
            secret.as_bytes(),
            self.config.jwt_issuer.as_deref(),
            &self.config.jwt_audience,
        )
        .unwrap();
        suite_log::names(&[req.name.as_deref().unwrap_or_default()]);
        token
    }

    /// A valid token for `role` at organisation `org`.
    pub fn token(&self, role: Role, org: &str) -> String {
        self.token_for(&token_request(role, org))
    }

    pub fn social(&self, la: &str) -> String {
        self.token(Role::SocialCare, la)
    }
    pub fn health(&self) -> String {
        self.token(Role::HealthCare, HOSPITAL)
    }
    pub fn ops(&self) -> String {
        self.token(Role::Operations, "X26")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self.client.0.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/fhir+json")
                .body(b.to_string());
        }
        RequestBuilder(req).send().await.expect("request sent")
    }

    /// A FHIR request with extra headers (If-Match, If-None-Exist, Prefer, …); a body is sent
    /// as `application/fhir+json`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self
            .client
            .0
            .request(method, self.url(path))
            .bearer_auth(token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/fhir+json")
                .body(b.to_string());
        }
        RequestBuilder(req).send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PUT, path, Some(token), Some(body))
            .await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Registers an LA (as operations) and returns its Organization.
    pub async fn create_la(&self, ods: &str) -> Value {
        let res = self.post("/Organization", &self.ops(), &la_json(ods)).await;
        assert_eq!(res.status(), 201, "create LA {ods}");
        body(res).await
    }

    /// Creates a plan (as its LA) and returns it.
    pub async fn create_plan(&self, plan: &Value) -> Value {
        let la = plan["managingOrganization"]["identifier"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        let res = self.post("/EpisodeOfCare", &self.social(&la), plan).await;
        assert_eq!(
            res.status(),
            201,
            "create plan: {}",
            res.text().await.unwrap_or_default()
        );
        body(res).await
    }

    /// Flags of a child, as health-care sees them.
    pub async fn flags_of(&self, nhs: &str) -> Value {
        let res = self
            .get(
                &format!("/Flag?patient:identifier={NHS}|{nhs}"),
                &self.health(),
            )
            .await;
        assert_eq!(res.status(), 200);
        body(res).await
    }

    /// Runs the notification dispatcher's due work now (an app spawned with
    /// `dispatcher = false` delivers nothing otherwise); returns how many rows it handled.
    /// Every attempt has been answered and recorded when it returns.
    pub async fn deliver_pending(&self) -> usize {
        self.dispatcher.deliver_pending().await
    }

    /// How many rows a table holds (to show that a rejected request wrote nothing).
    pub fn count_rows(&self, table: &str) -> i64 {
        self.count_where(table, "1 = 1")
    }

    /// How many rows of a table meet an SQL condition.
    pub fn count_where(&self, table: &str, condition: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().unwrap();
        diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        ))
        .get_result::<Count>(&mut **conn)
        .unwrap()
        .n
    }

    /// Row counts of every table: the whole database, for before/after comparisons.
    pub fn snapshot(&self) -> Vec<i64> {
        [
            "resources",
            "resource_versions",
            "search_tokens",
            "search_dates",
            "unique_identifiers",
        ]
        .iter()
        .map(|t| self.count_rows(t))
        .collect()
    }

    /// (type, id, version, deleted) of every resource: a rejected write changes none of them.
    pub fn versions(&self) -> Vec<(String, String, i64, bool)> {
        #[derive(diesel::QueryableByName)]
        struct Version {
            #[diesel(sql_type = diesel::sql_types::Text)]
            resource_type: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            version_id: i64,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            deleted: bool,
        }
        let mut conn = self.pool.get().unwrap();
        diesel::sql_query(
            "SELECT resource_type, id, version_id, deleted FROM resources ORDER BY resource_type, id",
        )
        .load::<Version>(&mut **conn)
        .unwrap()
        .into_iter()
        .map(|v| (v.resource_type, v.id, v.version_id, v.deleted))
        .collect()
    }
}
