//! `TestApp`: the real application on a real port, with a fresh database per test: a SQLite
//! file in a temporary directory, or, when `CPIS_TEST_DATABASE_URL` is set, a fresh PostgreSQL
//! schema dropped afterwards. The same tests run on both engines.

use std::sync::{Once, OnceLock};

use cpis::auth::jwt::{issue, JwtAlgorithm, KeyConfig, TokenRequest};
use cpis::auth::Role;
use cpis::config::Config;
use cpis::db::DbPool;
use cpis::startup::Application;
use cpis::validation::Profiles;
use diesel::RunQueryDsl;
use reqwest::{Method, Response, ResponseBuilderExt};
use serde_json::{json, Value};

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

/// The database a test runs on, removed when the test ends.
enum TestDb {
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

fn fresh_database(engine: Engine) -> (String, TestDb) {
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

/// The JSON body of a response; a FHIR resource is checked against its profile (`conform`).
pub async fn body(res: Response) -> Value {
    let url = res.url().to_string();
    let text = res.text().await.expect("a response body");
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"));
    conform(&value, &url);
    value
}

/// `res.fhir().await`: the body of a response, as `body`.
pub trait FhirJson {
    fn fhir(self) -> impl std::future::Future<Output = Value>;
}

impl FhirJson for Response {
    fn fhir(self) -> impl std::future::Future<Output = Value> {
        body(self)
    }
}

fn profiles() -> &'static Profiles {
    static PROFILES: OnceLock<Profiles> = OnceLock::new();
    PROFILES.get_or_init(|| Profiles::load().expect("the profiles compile"))
}

/// The profile (file stem) and FHIRPath root a resource the server returns must conform to;
/// `None` for the CapabilityStatement, which has no profile of ours.
fn output_profile(resource: &Value) -> Option<(&'static str, &'static str)> {
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    match (ty, resource["type"].as_str()) {
        ("Bundle", Some("searchset")) => Some(("Bundle-searchset", "Bundle")),
        ("Bundle", Some("history")) => Some(("Bundle-history", "Bundle")),
        ("Bundle", Some("batch-response" | "transaction-response")) => {
            Some(("Bundle-response", "Bundle"))
        }
        ("Flag", _) => Some(("Flag", "Flag")),
        ("EpisodeOfCare", _) => Some(("EpisodeOfCare", "EpisodeOfCare")),
        ("Organization", _) => Some(("Organization", "Organization")),
        ("OperationOutcome", _) => Some(("OperationOutcome", "OperationOutcome")),
        ("AuditEvent", _) => Some(("AuditEvent", "AuditEvent")),
        ("Subscription", _) => Some(("Subscription", "Subscription")),
        ("CapabilityStatement", _) => None,
        _ => panic!("the server returned a resource with no profile in fhir-profiles/: {resource}"),
    }
}

/// Fails the test unless `resource`, returned by the server for `context`, conforms to its
/// profile in `fhir-profiles/`, and every stored resource in it (itself, or a Bundle's
/// entries) carries the `id` and `meta` SPEC §3 promises.
pub fn conform(resource: &Value, context: &str) {
    no_empty_arrays_or_objects(resource, context, "");
    let in_view = [cpis::views::CPIS_PATH, cpis::views::PATIENT_FLAG_PATH]
        .iter()
        .any(|view| context.contains(view));
    conform_to_contract(resource, context, in_view);
    // A subset (`_summary`, `_elements`) leaves out elements the profiles require, by design:
    // it says so with the SUBSETTED tag, and is checked against the contract only.
    if resource.to_string().contains("\"SUBSETTED\"") {
        return;
    }
    // NHS England's views answer in the guides' shapes, not ours: CI validates them against
    // FHIR itself (`.ci/fhir_resources_check.py`), and `nhs_views` checks them element by element.
    if in_view {
        return;
    }
    let Some((profile, root)) = output_profile(resource) else {
        return;
    };
    let issues = profiles().validate(profile, root, resource);
    assert!(
        issues.is_empty(),
        "{context}: the server's {profile} breaks its profile:\n{}\n{resource}",
        issues
            .iter()
            .map(|i| format!("  {:?} {}: {}", i.expression, i.spine.code(), i.diagnostics))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stored: Vec<&Value> = match profile {
        "Bundle-searchset" | "Bundle-history" => resource["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource"))
            .collect(),
        "Flag" | "EpisodeOfCare" | "Organization" => vec![resource],
        _ => vec![],
    };
    for r in stored
        .into_iter()
        .filter(|r| r["resourceType"] != "OperationOutcome")
    {
        let ty = r["resourceType"].as_str().unwrap_or_default();
        let canonical = Profiles::canonical(output_profile(r).map_or(ty, |(name, _)| name));
        assert!(
            r["id"].is_string()
                && r["meta"]["versionId"].is_string()
                && r["meta"]["lastUpdated"].is_string()
                && r["meta"]["profile"]
                    .as_array()
                    .is_some_and(|p| p.contains(&json!(canonical))),
            "{context}: a stored {ty} without id, meta.versionId, meta.lastUpdated and \
             meta.profile {canonical}: {r}"
        );
    }
}

/// FHIR JSON has no empty arrays or objects (R4 JSON §2.6.2).
fn no_empty_arrays_or_objects(value: &Value, context: &str, path: &str) {
    let empty = match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                no_empty_arrays_or_objects(item, context, &format!("{path}[{i}]"));
            }
            items.is_empty()
        }
        Value::Object(map) => {
            for (name, child) in map {
                no_empty_arrays_or_objects(child, context, &format!("{path}.{name}"));
            }
            map.is_empty()
        }
        _ => false,
    };
    assert!(!empty, "{context}: an empty array or object at {path}");
}

/// The `openapi.yaml` component schema a resource the server returns is published as, so
/// that the contract integrators generate clients from cannot drift from what the server sends.
fn contract_schema(resource: &Value, in_view: bool) -> Option<&'static str> {
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    Some(match (ty, resource["type"].as_str()) {
        ("OperationOutcome", _) => "OperationOutcome",
        ("CapabilityStatement", _) => "CapabilityStatement",
        ("Bundle", _) if in_view => "NhsViewBundle",
        _ if in_view => "NhsViewResource",
        ("Bundle", Some("batch-response" | "transaction-response")) => "UploadResponseBundle",
        ("Bundle", _) => "Bundle",
        ("Flag", _) => "Flag",
        ("EpisodeOfCare", _) => "EpisodeOfCare",
        ("Organization", _) => "Organization",
        ("AuditEvent", _) => "AuditEvent",
        ("Subscription", _) => "Subscription",
        _ => return None,
    })
}

/// Fails the test unless `resource` is valid against its component schema in `openapi.yaml`
/// (read as JSON Schema draft 4, which OpenAPI 3.0's schema objects extend).
fn conform_to_contract(resource: &Value, context: &str, in_view: bool) {
    type Validators =
        std::collections::HashMap<&'static str, std::sync::Arc<jsonschema::Validator>>;
    static CONTRACT: OnceLock<Value> = OnceLock::new();
    static VALIDATORS: OnceLock<std::sync::Mutex<Validators>> = OnceLock::new();
    let Some(schema_name) = contract_schema(resource, in_view) else {
        return;
    };
    let validator = {
        let mut validators = VALIDATORS
            .get_or_init(Default::default)
            .lock()
            .expect("unpoisoned");
        validators
            .entry(schema_name)
            .or_insert_with(|| {
                let components = CONTRACT.get_or_init(|| {
                    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
                    let text = std::fs::read_to_string(path).expect("openapi.yaml is readable");
                    let contract: Value =
                        serde_norway::from_str(&text).expect("openapi.yaml parses");
                    contract["components"].clone()
                });
                let schema = json!({
                    "$ref": format!("#/components/schemas/{schema_name}"),
                    "components": components,
                });
                std::sync::Arc::new(
                    jsonschema::draft4::new(&schema).expect("openapi.yaml's schemas compile"),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(resource)
        .map(|e| format!("  {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{context}: the response breaks openapi.yaml's {schema_name} schema:\n{}\n{resource}",
        errors.join("\n")
    );
}

/// A reqwest client whose every response is checked on arrival: a body that is a FHIR
/// resource must conform to its profile (`conform`), whether or not the test reads it, and a
/// body sent as `application/fhir+json` must be a FHIR resource. The response is then handed
/// back as it came, so tests read status, headers and body as usual.
#[derive(Clone, Default)]
pub struct Client(reqwest::Client);

pub struct RequestBuilder(reqwest::RequestBuilder);

impl Client {
    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        RequestBuilder(self.0.request(method, url))
    }
    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }
    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }
}

impl RequestBuilder {
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        Self(self.0.bearer_auth(token))
    }
    pub fn header(self, name: &str, value: &str) -> Self {
        Self(self.0.header(name, value))
    }
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self(self.0.body(body))
    }
    pub async fn send(self) -> reqwest::Result<Response> {
        checked(self.0.send().await?).await
    }
}

async fn checked(res: Response) -> reqwest::Result<Response> {
    let (status, version, url) = (res.status(), res.version(), res.url().clone());
    let headers = res.headers().clone();
    let bytes = res.bytes().await?;
    let fhir_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/fhir+json"));
    let context = format!("{status} from {url}");
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.get("resourceType").is_some() => conform(&value, &context),
        _ if fhir_json && !bytes.is_empty() => panic!(
            "{context}: an application/fhir+json body that is not a FHIR resource: {}",
            String::from_utf8_lossy(&bytes)
        ),
        _ => {}
    }
    let mut rebuilt = http::Response::builder()
        .status(status)
        .version(version)
        .url(url);
    for (name, value) in &headers {
        rebuilt = rebuilt.header(name, value);
    }
    Ok(Response::from(
        rebuilt.body(bytes).expect("the response as it came"),
    ))
}

pub fn token_request(role: Role, org: &str) -> TokenRequest {
    TokenRequest {
        sub: format!("user-{}", role.as_str()),
        role,
        org: Some(org.into()),
        name: Some("Jane Smith".into()),
        org_name: Some("Test organisation".into()),
        job_role: Some("Staff Nurse".into()),
        job_role_code: None,
        ttl_seconds: 300,
    }
}

/// A health-care token for person `n` at the hospital: each `n` a person of their own, so each
/// lookup is a first view (shown and notified).
pub fn clinician(app: &TestApp, n: usize) -> String {
    let mut req = token_request(Role::HealthCare, HOSPITAL);
    req.sub = format!("clinician-{n}");
    req.name = Some(format!("Clinician {n}"));
    app.token_for(&req)
}

/// An LA's rest-hook Subscription to `endpoint`.
pub fn subscription_json(endpoint: &str) -> Value {
    json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Tell the LA when its children are seen in unscheduled care",
        "criteria": "AuditEvent?",
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "header": ["Authorization: Bearer la-shared-secret"]
        }
    })
}

pub fn la_json(ods: &str) -> Value {
    json!({
        "resourceType": "Organization",
        "identifier": [{"system": ODS, "value": ods}],
        "active": true,
        "name": format!("Local authority {ods}"),
        "telecom": [
            {"system": "phone", "value": "020 7000 0001", "use": "work"},
            {"system": "phone", "value": "020 7000 0999", "use": "mobile"}
        ]
    })
}

pub fn plan_system(la: &str) -> String {
    format!("https://fhir.{}.gov.uk/Id/plan", la.to_ascii_lowercase())
}

/// An active child protection plan of `la` for `nhs`, referenced `reference`.
pub fn plan_json(nhs: &str, la: &str, reference: &str) -> Value {
    json!({
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": plan_system(la), "value": reference}],
        "status": "active",
        "type": [{"coding": [{"system": SNOMED, "code": CPP}]}],
        "patient": {"identifier": {"system": NHS, "value": nhs}},
        "managingOrganization": {"identifier": {"system": ODS, "value": la}},
        "period": {"start": "2026-01-05"}
    })
}

/// Asserts an error response: its status, and the Spine code of its first issue. Returns the
/// OperationOutcome for further checks.
pub async fn expect_outcome(res: Response, status: u16, spine: &str) -> Value {
    let url = format!(
        "{} {}",
        res.url().path(),
        res.url().query().unwrap_or_default()
    );
    assert_eq!(res.status(), status, "{url}");
    let outcome = body(res).await;
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{url}");
    assert_eq!(spine_code(&outcome), spine, "{url}: {outcome}");
    outcome
}

/// The Spine code of the first issue of an OperationOutcome.
pub fn spine_code(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

/// The log-privacy check (issue #15, `.ci/log_privacy.sh`): with `CPIS_TEST_LOG_FILE` set, every
/// log line of the suite (the in-process servers, as JSON at `RUST_LOG`, and the `cpis serve`
/// processes the tests start) is kept in that file, and every name the tests put in a token in
/// `<file>.secrets`, for a checker to look for them (and for any token: a JWT is easy to see).
pub mod suite_log {
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::sync::Mutex;

    pub fn file() -> Option<String> {
        std::env::var("CPIS_TEST_LOG_FILE")
            .ok()
            .filter(|f| !f.is_empty())
    }

    fn append(path: &str) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the suite's log file")
    }

    pub fn install(path: &str) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(Mutex::new(append(path)))
            .try_init();
    }

    /// Where a `cpis serve` process started by a test writes its log.
    pub fn process_log() -> Option<File> {
        file().map(|f| append(&format!("{f}.processes")))
    }

    pub fn names(values: &[&str]) {
        static LOCK: Mutex<()> = Mutex::new(());
        if let Some(f) = file() {
            let _guard = LOCK.lock();
            let mut out = append(&format!("{f}.secrets"));
            for value in values.iter().filter(|v| !v.is_empty()) {
                writeln!(out, "{value}").expect("write a secret");
            }
        }
    }
}
