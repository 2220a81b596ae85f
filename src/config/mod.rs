//! Configuration from `CPIS_*` environment variables (SPEC §8). Passed into the application,
//! never read from a global.
//!
//! `env` reads one variable; `database` judges the database URL and the backup schedule;
//! `jwt` the token keys and claims.

mod database;
mod env;
mod jwt;

use std::fmt;
use std::time::Duration;

use crate::attendance::AttendanceRule;
use crate::auth::claims::ClaimMap;
use crate::auth::jwt::KeyConfig;
use crate::notify::DeliveryConfig;

use crate::error::ConfigError;
pub use database::database_tls;
pub use jwt::require_issuer;

use database::backup_schedule;
use env::{at_least_one, cors_origins, millis, on_off, parsed, var};
use jwt::{claim_map, jwt_key};

/// RFC 7518 §3.2: an HS256 key at least as long as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// The fixed development secret used only with `CPIS_SANDBOX=1` and no key configured.
pub const SANDBOX_SECRET: &str = "cpis-sandbox-development-secret-do-not-use-in-production";

#[derive(Clone)]
pub struct Config {
    /// `CPIS_DATABASE_URL`, default `sqlite://cpis.db`.
    pub database_url: String,
    /// Why the PostgreSQL connection may travel in clear text, when `CPIS_DATABASE_ALLOW_PLAINTEXT=1`
    /// let a remote host without TLS through (`database_tls`): warned about at start.
    pub database_plaintext: Option<String>,
    /// `CPIS_BIND`, default `127.0.0.1:8080`.
    pub bind: String,
    /// `CPIS_BASE_URL`, default `http://<bind>/FHIR/R4` (with the bound port when 0 was asked).
    pub base_url: Option<String>,
    /// `CPIS_JWT_SECRET` / `CPIS_JWT_PUBLIC_KEY_FILE` + `CPIS_JWT_ALG` / `CPIS_JWT_JWKS_URL` /
    /// OIDC discovery from `CPIS_JWT_ISSUER` (`jwt_key`).
    pub key: Option<KeyConfig>,
    /// `CPIS_JWT_CLAIM_*` and `CPIS_JWT_ROLE_MAP`: where the provider puts each claim.
    pub claims: ClaimMap,
    /// `CPIS_JWT_ISSUER`, default unset (then `iss` is not checked).
    pub jwt_issuer: Option<String>,
    /// `CPIS_JWT_AUDIENCE`, default `cpis`.
    pub jwt_audience: String,
    /// `CPIS_SANDBOX=1` seeds sample data and allows the development secret.
    pub sandbox: bool,
    /// `CPIS_RETENTION_MONTHS`, default 12.
    pub retention_months: u32,
    /// `CPIS_AUDIT_RETENTION_MONTHS`, default 96.
    pub audit_retention_months: u32,
    /// `CPIS_MAX_BODY_BYTES`, default 10 MiB.
    pub max_body_bytes: usize,
    /// `CPIS_MAX_BUNDLE_ENTRIES`: entries per upload Bundle, default 5000.
    pub max_bundle_entries: usize,
    /// `CPIS_DB_POOL_SIZE`, default 16.
    pub db_pool_size: u32,
    /// `CPIS_DB_TIMEOUT_MS`: how long a request waits for a connection before 503, default 3000.
    pub db_timeout: Duration,
    /// `CPIS_WORKERS`: HTTP worker threads, default the number of cores.
    pub workers: Option<usize>,
    /// `CPIS_LOG_FORMAT`: `json` or `text` (default `text`).
    pub log_json: bool,
    /// `CPIS_NOTIFY_ALLOWED_HOSTS`: comma-separated hosts Subscription endpoints may name;
    /// unset = any host.
    pub notify_allowed_hosts: Option<Vec<String>>,
    /// `CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS=1`: endpoints may be internal addresses (HSCN).
    pub notify_allow_private_networks: bool,
    /// `CPIS_NOTIFY_TIMEOUT_MS` (5000), `CPIS_NOTIFY_RETRY_BASE_MS` (1000),
    /// `CPIS_NOTIFY_RETRY_MAX_MS` (300000), `CPIS_NOTIFY_POLL_MS` (1000).
    pub delivery: DeliveryConfig,
    /// `CPIS_NOTIFY_DISPATCHER=0` runs this process without delivering notifications.
    pub dispatcher: bool,
    /// `CPIS_ATTENDANCE_WINDOW_DAYS` (30) and `CPIS_ATTENDANCE_SETTINGS` (3): when a child's
    /// unscheduled attendances make a pattern (`attendance`).
    pub attendance: AttendanceRule,
    /// `CPIS_METRICS_BIND`: also serve `GET /metrics` without a token on this address (for a
    /// scraper on a private network); unset = only on the main port, for `operations`.
    pub metrics_bind: Option<String>,
    /// `CPIS_SHUTDOWN_GRACE_MS` (0): after SIGTERM, how long to keep serving with `/_ready` at
    /// 503 before no longer accepting.
    pub shutdown_grace: Duration,
    /// `CPIS_SHUTDOWN_TIMEOUT_SECONDS` (20): how long in-flight requests may take to finish.
    pub shutdown_timeout: Duration,
    /// `CPIS_CORS_ORIGINS`: comma-separated browser origins (`https://app.example.org`) that
    /// may call the API; unset = no CORS (browsers on other origins cannot call).
    pub cors_origins: Vec<String>,
    /// `CPIS_NHS_VIEWS=on|off` (default on): serve NHS England's CP-IS APIs as views
    /// (`crate::views`); off, their paths are 404.
    pub nhs_views: bool,
    /// `CPIS_BACKUP_DIR` + `CPIS_BACKUP_EVERY` (24h) + `CPIS_BACKUP_KEEP` (14): scheduled
    /// backups of the SQLite database inside the server; unset = none (`backup::schedule`).
    pub backup: Option<crate::backup::Schedule>,
    /// `CPIS_VIEWER`, `CPIS_VIEWER_OIDC_ISSUER`, `CPIS_VIEWER_FRAME_ANCESTORS`: the clinician
    /// viewer (`crate::viewer`); default off, on with `CPIS_SANDBOX=1`.
    pub viewer: crate::viewer::ViewerConfig,
    /// The system clock; tests fix it.
    pub clock: crate::clock::Clock,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_env_with(true)
    }

    /// The configuration; without a key when `needs_key` is false (commands that neither
    /// serve nor sign, such as `cpis purge`).
    pub fn from_env_with(needs_key: bool) -> Result<Config, ConfigError> {
        let sandbox = matches!(var("CPIS_SANDBOX").as_deref(), Some("1" | "true" | "yes"));
        let key = match jwt_key()? {
            Some(key) => Some(key),
            None if sandbox || !needs_key => None,
            None => return Err(ConfigError::NoKey),
        };
        require_issuer(key.as_ref(), var("CPIS_JWT_ISSUER").as_deref())?;
        let database_url = var("CPIS_DATABASE_URL").unwrap_or_else(|| "sqlite://cpis.db".into());
        let database_plaintext = database_tls(
            &database_url,
            matches!(
                var("CPIS_DATABASE_ALLOW_PLAINTEXT").as_deref(),
                Some("1" | "true" | "yes")
            ),
            var,
        )?;
        let backup = backup_schedule(&database_url)?;
        Ok(Config {
            database_url,
            database_plaintext,
            bind: var("CPIS_BIND").unwrap_or_else(|| "127.0.0.1:8080".into()),
            base_url: var("CPIS_BASE_URL").map(|u| u.trim_end_matches('/').to_string()),
            key,
            claims: claim_map()?,
            jwt_issuer: var("CPIS_JWT_ISSUER"),
            jwt_audience: var("CPIS_JWT_AUDIENCE").unwrap_or_else(|| "cpis".into()),
            sandbox,
            retention_months: parsed("CPIS_RETENTION_MONTHS", 12)?,
            audit_retention_months: parsed("CPIS_AUDIT_RETENTION_MONTHS", 96)?,
            max_body_bytes: parsed("CPIS_MAX_BODY_BYTES", 10 * 1024 * 1024)?,
            max_bundle_entries: parsed("CPIS_MAX_BUNDLE_ENTRIES", 5000)?,
            db_pool_size: parsed("CPIS_DB_POOL_SIZE", 16)?,
            db_timeout: Duration::from_millis(parsed("CPIS_DB_TIMEOUT_MS", 3000)?),
            workers: match var("CPIS_WORKERS") {
                None => None,
                Some(_) => Some(parsed("CPIS_WORKERS", 2usize)?),
            },
            log_json: matches!(var("CPIS_LOG_FORMAT").as_deref(), Some("json")),
            notify_allowed_hosts: var("CPIS_NOTIFY_ALLOWED_HOSTS").map(|hosts| {
                hosts
                    .split(',')
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect()
            }),
            notify_allow_private_networks: matches!(
                var("CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS").as_deref(),
                Some("1" | "true" | "yes")
            ),
            delivery: DeliveryConfig {
                timeout: millis("CPIS_NOTIFY_TIMEOUT_MS", 5000)?,
                base_backoff: millis("CPIS_NOTIFY_RETRY_BASE_MS", 1000)?,
                max_backoff: millis("CPIS_NOTIFY_RETRY_MAX_MS", 300_000)?,
                poll: millis("CPIS_NOTIFY_POLL_MS", 1000)?,
                ..DeliveryConfig::default()
            },
            dispatcher: !matches!(
                var("CPIS_NOTIFY_DISPATCHER").as_deref(),
                Some("0" | "false" | "no")
            ),
            attendance: AttendanceRule {
                window_days: at_least_one("CPIS_ATTENDANCE_WINDOW_DAYS", 30)?,
                settings: at_least_one("CPIS_ATTENDANCE_SETTINGS", 3)?,
            },
            metrics_bind: var("CPIS_METRICS_BIND"),
            shutdown_grace: millis("CPIS_SHUTDOWN_GRACE_MS", 0)?,
            shutdown_timeout: Duration::from_secs(parsed("CPIS_SHUTDOWN_TIMEOUT_SECONDS", 20)?),
            cors_origins: var("CPIS_CORS_ORIGINS")
                .map(|origins| cors_origins(&origins))
                .transpose()?
                .unwrap_or_default(),
            nhs_views: on_off("CPIS_NHS_VIEWS", true)?,
            backup,
            viewer: crate::viewer::ViewerConfig::from_env(sandbox)?,
            clock: crate::clock::Clock::system(),
        })
    }

    /// A configuration for tests: an HS256 test secret, port 0, the given database.
    pub fn for_tests(database_url: String) -> Config {
        Config {
            database_url,
            database_plaintext: None,
            bind: "127.0.0.1:0".into(),
            base_url: None,
            key: Some(KeyConfig::Secret(
                "test-secret-for-cpis-integration-tests".into(),
            )),
            claims: ClaimMap::default(),
            jwt_issuer: Some("https://auth.cpis.test".into()),
            jwt_audience: "cpis".into(),
            sandbox: false,
            retention_months: 12,
            audit_retention_months: 96,
            max_body_bytes: 1024 * 1024,
            max_bundle_entries: 100,
            db_pool_size: 8,
            db_timeout: Duration::from_millis(2000),
            workers: Some(2),
            log_json: false,
            notify_allowed_hosts: None,
            // The tests' receivers listen on loopback: the opt-in they need, set explicitly.
            notify_allow_private_networks: true,
            delivery: DeliveryConfig {
                timeout: Duration::from_secs(2),
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                poll: Duration::from_millis(100),
                ..DeliveryConfig::default()
            },
            dispatcher: true,
            attendance: AttendanceRule::default(),
            cors_origins: Vec::new(),
            nhs_views: true,
            metrics_bind: None,
            shutdown_grace: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            backup: None,
            viewer: crate::viewer::ViewerConfig::default(),
            clock: crate::clock::Clock::system(),
        }
    }

    /// The key tokens are verified (and, for `cpis token`, signed) with. In sandbox mode with no
    /// key configured, the fixed development secret.
    pub fn effective_key(&self) -> KeyConfig {
        self.key
            .clone()
            .unwrap_or_else(|| KeyConfig::Secret(SANDBOX_SECRET.into()))
    }

    /// How long plans and AuditEvents are kept.
    pub fn retention(&self) -> crate::retention::RetentionPolicy {
        crate::retention::RetentionPolicy {
            plan_months: self.retention_months,
            audit_months: self.audit_retention_months,
        }
    }

    pub fn uses_sandbox_secret(&self) -> bool {
        self.key.is_none()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("key", &self.key.as_ref().map(|k| k.describe()))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("sandbox", &self.sandbox)
            .field("retention_months", &self.retention_months)
            .field("audit_retention_months", &self.audit_retention_months)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("db_pool_size", &self.db_pool_size)
            .field("attendance", &self.attendance)
            .field("cors_origins", &self.cors_origins)
            .field("nhs_views", &self.nhs_views)
            .field("backup", &self.backup)
            .finish_non_exhaustive()
    }
}

/// The URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_secrets_and_passwords() {
        let mut cfg = Config::for_tests("postgres://cpis:hunter2@localhost/cpis".into());
        cfg.key = Some(KeyConfig::Secret("supersecret".into()));
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("supersecret"), "{shown}");
    }
}
