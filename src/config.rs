//! Configuration from `CPIS_*` environment variables (SPEC §8). Passed into the application,
//! never read from a global.

use std::fmt;
use std::time::Duration;

use crate::attendance::AttendanceRule;
use crate::auth::claims::{parse_role_map, ClaimMap, ClaimPath};
use crate::auth::jwt::{JwtAlgorithm, KeyConfig};
use crate::auth::provider_keys::{provider_url, KeyRefresh, KeySource};
use crate::notify::DeliveryConfig;

pub use crate::error::ConfigError;

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

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A count that must be 1 or more.
fn at_least_one(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match parsed(name, default)? {
        0 => Err(ConfigError::Invalid {
            var: name,
            reason: "must be at least 1".into(),
        }),
        n => Ok(n),
    }
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            var: name,
            reason: format!("{e}"),
        }),
    }
}

/// `CPIS_CORS_ORIGINS`: each an origin as browsers send it (`scheme://host[:port]`, no path).
fn cors_origins(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| match url::Url::parse(origin) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.origin().ascii_serialization() == origin =>
            {
                Ok(origin.to_string())
            }
            _ => Err(ConfigError::Invalid {
                var: "CPIS_CORS_ORIGINS",
                reason: format!("{origin:?} is not an origin (scheme://host[:port], no path)"),
            }),
        })
        .collect()
}

fn millis(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    parsed(name, default).map(Duration::from_millis)
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

/// A switch: `on` or `off` (also `1`/`0`, `true`/`false`, `yes`/`no`); unset, `default`.
fn on_off(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("on" | "1" | "true" | "yes") => Ok(true),
        Some("off" | "0" | "false" | "no") => Ok(false),
        Some(other) => Err(invalid(name, format!("{other:?}: use on or off"))),
    }
}

/// The `sslmode`s that encrypt: libpq's `disable`, `allow` and `prefer` (its default) may all
/// talk in clear text.
const TLS_MODES: &[&str] = &["require", "verify-ca", "verify-full"];

/// A PostgreSQL URL's hosts and parameters, as libpq reads them: the hosts of the authority
/// (`postgres://u:p@h1:5432,h2/db`, an IPv6 one in brackets, a Unix socket directory
/// percent-encoded), then `host=` and `hostaddr=` in the query (libpq-style parameters, which
/// override), each possibly a comma-separated list.
fn postgres_hosts_and_params(url: &str) -> (Vec<String>, Vec<(String, String)>) {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let hostlist = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut hosts: Vec<String> = hostlist
        .split(',')
        .map(|h| {
            if let Some(v6) = h.strip_prefix('[') {
                v6.split(']').next().unwrap_or_default().to_string()
            } else {
                decode(h.split(':').next().unwrap_or_default())
            }
        })
        .collect();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let named: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "host" || k == "hostaddr")
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    if params.iter().any(|(k, _)| k == "host") {
        hosts.clear();
    }
    hosts.extend(named);
    (hosts, params)
}

/// A host libpq reaches without leaving the machine: a Unix socket (a directory path, an
/// abstract socket `@name`, or no host at all: the default socket), `localhost` or a loopback
/// address.
fn is_local_host(host: &str) -> bool {
    let host = host.trim();
    host.is_empty()
        || host.starts_with('/')
        || host.starts_with('@')
        || host.eq_ignore_ascii_case("localhost")
        || host.eq_ignore_ascii_case("localhost.")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `CPIS_DATABASE_URL` on PostgreSQL to a host other than this machine must be encrypted:
/// `sslmode` `require`, `verify-ca` or `verify-full` (in the URL, else `PGSSLMODE`). Otherwise
/// the start is refused, unless `allow_plaintext` (`CPIS_DATABASE_ALLOW_PLAINTEXT=1`); then the
/// reason is returned, for a warning at start. `env` reads libpq's own variables (`PGHOST`,
/// `PGSSLMODE`), which apply where the URL is silent.
pub fn database_tls(
    url: &str,
    allow_plaintext: bool,
    env: impl Fn(&'static str) -> Option<String>,
) -> Result<Option<String>, ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(None);
    }
    let (mut hosts, params) = postgres_hosts_and_params(url);
    if hosts.iter().all(|h| h.trim().is_empty()) {
        if let Some(pghost) = env("PGHOST") {
            hosts = pghost.split(',').map(str::to_string).collect();
        }
    }
    let remote: Vec<&String> = hosts.iter().filter(|h| !is_local_host(h)).collect();
    if remote.is_empty() {
        return Ok(None);
    }
    let sslmode = params
        .iter()
        .rev()
        .find(|(k, _)| k == "sslmode")
        .map(|(_, v)| v.clone())
        .or_else(|| env("PGSSLMODE"))
        .unwrap_or_else(|| "prefer".into());
    if TLS_MODES.contains(&sslmode.trim()) {
        return Ok(None);
    }
    let hosts = remote
        .iter()
        .map(|h| h.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let reason = format!(
        "PostgreSQL at {hosts} with sslmode={sslmode} may send the data in clear text over the network"
    );
    if allow_plaintext {
        Ok(Some(reason))
    } else {
        Err(invalid(
            "CPIS_DATABASE_URL",
            format!(
                "{reason}: add sslmode=verify-full (with sslrootcert=/path/ca.crt), or verify-ca \
                 or require, to the URL; or set CPIS_DATABASE_ALLOW_PLAINTEXT=1 to accept it"
            ),
        ))
    }
}

/// `CPIS_BACKUP_DIR`, `CPIS_BACKUP_EVERY` and `CPIS_BACKUP_KEEP`: scheduled backups, for the
/// embedded database only (PostgreSQL has its own tools); `_EVERY` or `_KEEP` without a
/// directory is a mistake, said at start.
fn backup_schedule(database_url: &str) -> Result<Option<crate::backup::Schedule>, ConfigError> {
    let Some(dir) = var("CPIS_BACKUP_DIR") else {
        for name in ["CPIS_BACKUP_EVERY", "CPIS_BACKUP_KEEP"] {
            if var(name).is_some() {
                return Err(invalid(
                    name,
                    "set CPIS_BACKUP_DIR too (where backups are written)",
                ));
            }
        }
        return Ok(None);
    };
    if !database_url.starts_with("sqlite://") {
        return Err(invalid(
            "CPIS_BACKUP_DIR",
            "scheduled backups are for the embedded SQLite database; back PostgreSQL up with \
             pg_basebackup (with WAL archiving) or pg_dump (README, \"Backups\")",
        ));
    }
    let every = match var("CPIS_BACKUP_EVERY") {
        None => Duration::from_secs(24 * 60 * 60),
        Some(every) => crate::backup::schedule::parse_every(&every)
            .map_err(|e| invalid("CPIS_BACKUP_EVERY", e))?,
    };
    let keep = usize::try_from(at_least_one("CPIS_BACKUP_KEEP", 14)?).unwrap_or(usize::MAX);
    Ok(Some(crate::backup::Schedule {
        dir: dir.trim().into(),
        every,
        keep,
    }))
}

/// An identity provider's keys (`CPIS_JWT_JWKS_URL`) sign the tokens of every client and realm
/// it serves: without `CPIS_JWT_ISSUER` the issuer would not be checked, so the start is
/// refused. (OIDC discovery starts from the issuer, so always has it.)
pub fn require_issuer(key: Option<&KeyConfig>, issuer: Option<&str>) -> Result<(), ConfigError> {
    match (key, issuer.map(str::trim).filter(|i| !i.is_empty())) {
        (Some(key), None) if key.is_provider() => Err(invalid(
            "CPIS_JWT_ISSUER",
            "CPIS_JWT_JWKS_URL needs CPIS_JWT_ISSUER too (the provider's `iss`): without it a \
             token signed with the provider's keys would be accepted whoever it was issued by",
        )),
        _ => Ok(()),
    }
}

/// `CPIS_JWT_ALG`: one algorithm, or for a provider's keys a comma-separated list.
fn algorithms() -> Result<Vec<JwtAlgorithm>, ConfigError> {
    var("CPIS_JWT_ALG")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse().map_err(|e: String| invalid("CPIS_JWT_ALG", e)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The one key source configured: a shared secret, a public key file, a JWKS URL, or (none of
/// those, an issuer set) OpenID Connect discovery from the issuer.
fn jwt_key() -> Result<Option<KeyConfig>, ConfigError> {
    let algs = algorithms()?;
    let sources = [
        var("CPIS_JWT_SECRET").map(|s| ("CPIS_JWT_SECRET", s)),
        var("CPIS_JWT_PUBLIC_KEY_FILE").map(|s| ("CPIS_JWT_PUBLIC_KEY_FILE", s)),
        var("CPIS_JWT_JWKS_URL").map(|s| ("CPIS_JWT_JWKS_URL", s)),
    ];
    let mut set = sources.into_iter().flatten();
    let (name, value) =
        match (set.next(), set.next()) {
            (Some(_), Some(_)) => return Err(invalid(
                "CPIS_JWT_SECRET",
                "set only one of CPIS_JWT_SECRET, CPIS_JWT_PUBLIC_KEY_FILE and CPIS_JWT_JWKS_URL",
            )),
            (Some(one), None) => one,
            (None, _) => match var("CPIS_JWT_ISSUER") {
                Some(issuer) => ("discovery", issuer),
                None => return Ok(None),
            },
        };
    let one_alg = |allowed: &[JwtAlgorithm], default: Option<JwtAlgorithm>, why: &str| match algs
        .as_slice()
    {
        [] => default.ok_or_else(|| invalid("CPIS_JWT_ALG", why)),
        [a] if allowed.contains(a) => Ok(*a),
        _ => Err(invalid("CPIS_JWT_ALG", why)),
    };
    match name {
        "CPIS_JWT_SECRET" => {
            one_alg(
                &[JwtAlgorithm::HS256],
                Some(JwtAlgorithm::HS256),
                "a shared secret is used with HS256 only",
            )?;
            if value.len() < MIN_SECRET_BYTES {
                return Err(invalid("CPIS_JWT_SECRET", format!(
                    "an HS256 secret must be at least {MIN_SECRET_BYTES} bytes (this one has {}): generate one with `openssl rand -base64 48`",
                    value.len()
                )));
            }
            Ok(Some(KeyConfig::Secret(value)))
        }
        "CPIS_JWT_PUBLIC_KEY_FILE" => {
            let pem = std::fs::read(&value).map_err(|e| {
                invalid(
                    "CPIS_JWT_PUBLIC_KEY_FILE",
                    format!("cannot read {value}: {e}"),
                )
            })?;
            let alg = one_alg(
                &[
                    JwtAlgorithm::RS256,
                    JwtAlgorithm::PS256,
                    JwtAlgorithm::ES256,
                ],
                None,
                "a public key needs CPIS_JWT_ALG=RS256, PS256 or ES256",
            )?;
            Ok(Some(KeyConfig::PublicKey { alg, pem }))
        }
        _ => {
            let source = if name == "discovery" {
                // Exactly as configured: the discovery document must name this issuer (some
                // providers' end in `/`), and tokens are checked against it.
                KeySource::Discovery { issuer: value }
            } else {
                KeySource::Jwks(
                    url::Url::parse(&value)
                        .map_err(|e| invalid("CPIS_JWT_JWKS_URL", format!("{value:?}: {e}")))?,
                )
            };
            let var_name = if name == "discovery" {
                "CPIS_JWT_ISSUER"
            } else {
                name
            };
            source
                .first_url()
                .and_then(|url| provider_url(&url))
                .map_err(|e| invalid(var_name, e))?;
            if algs.contains(&JwtAlgorithm::HS256) {
                return Err(invalid(
                    "CPIS_JWT_ALG",
                    "an identity provider's keys are public keys: RS256, PS256 or ES256",
                ));
            }
            Ok(Some(KeyConfig::Provider {
                source,
                algorithms: if algs.is_empty() {
                    vec![JwtAlgorithm::RS256]
                } else {
                    algs
                },
                refresh: KeyRefresh {
                    max_age: Duration::from_secs(parsed("CPIS_JWT_JWKS_REFRESH_SECONDS", 300)?),
                    min_interval: Duration::from_secs(parsed(
                        "CPIS_JWT_JWKS_MIN_INTERVAL_SECONDS",
                        10,
                    )?),
                    ..KeyRefresh::default()
                },
            }))
        }
    }
}

/// `CPIS_JWT_CLAIM_{ROLE,ORG,NAME,ORG_NAME,JOB_ROLE,JOB_ROLE_CODE}` (a claim name, or a JSONPath
/// starting with `$`) and `CPIS_JWT_ROLE_MAP` (`provider-value=role,…`).
fn claim_map() -> Result<ClaimMap, ConfigError> {
    let path = |name: &'static str, default: ClaimPath| -> Result<ClaimPath, ConfigError> {
        match var(name) {
            None => Ok(default),
            Some(spec) => ClaimPath::parse(&spec).map_err(|e| invalid(name, e)),
        }
    };
    let d = ClaimMap::default();
    Ok(ClaimMap {
        role: path("CPIS_JWT_CLAIM_ROLE", d.role)?,
        org: path("CPIS_JWT_CLAIM_ORG", d.org)?,
        name: path("CPIS_JWT_CLAIM_NAME", d.name)?,
        org_name: path("CPIS_JWT_CLAIM_ORG_NAME", d.org_name)?,
        job_role: path("CPIS_JWT_CLAIM_JOB_ROLE", d.job_role)?,
        job_role_code: path("CPIS_JWT_CLAIM_JOB_ROLE_CODE", d.job_role_code)?,
        role_values: var("CPIS_JWT_ROLE_MAP")
            .map(|spec| parse_role_map(&spec).map_err(|e| invalid("CPIS_JWT_ROLE_MAP", e)))
            .transpose()?,
    })
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

    fn no_env(_: &'static str) -> Option<String> {
        None
    }

    #[test]
    fn a_remote_postgresql_without_tls_is_refused() {
        for url in [
            "postgres://cpis:pw@db.example.org/cpis",
            "postgres://cpis:pw@db.example.org:5432/cpis?sslmode=prefer",
            "postgresql://cpis@10.0.0.5/cpis?sslmode=disable",
            "postgres://cpis@10.0.0.5/cpis?sslmode=allow",
            "postgres://cpis@[2001:db8::5]:5432/cpis",
            "postgres://cpis@localhost,db.example.org/cpis",
            "postgres:///cpis?host=db.example.org",
            "postgres://cpis@localhost/cpis?host=db.example.org&sslmode=prefer",
            "postgres://cpis@localhost/cpis?hostaddr=192.0.2.7",
            "postgres://cpis@%2Fvar%2Frun%2Fpostgresql/cpis?host=/tmp,db.example.org",
            "postgres://cpis@db.example.org/cpis?sslmode=require&sslmode=prefer",
        ] {
            let err = database_tls(url, false, no_env).expect_err(url).to_string();
            assert!(err.contains("CPIS_DATABASE_URL"), "{url}: {err}");
            assert!(err.contains("sslmode"), "{url}: {err}");
            assert!(
                err.contains("CPIS_DATABASE_ALLOW_PLAINTEXT=1"),
                "{url}: {err}"
            );
            assert!(!err.contains("pw"), "{url}: {err}");
            let allowed = database_tls(url, true, no_env).expect(url);
            assert!(allowed.is_some_and(|w| w.contains("clear text")), "{url}");
        }
    }

    #[test]
    fn tls_loopback_and_unix_sockets_are_accepted() {
        for url in [
            "postgres://cpis:pw@db.example.org/cpis?sslmode=verify-full&sslrootcert=/ca.crt",
            "postgres://cpis@db.example.org/cpis?sslmode=verify-ca",
            "postgresql://cpis@10.0.0.5:5432/cpis?sslmode=require",
            "postgres://cpis@localhost/cpis",
            "postgres://cpis@LOCALHOST:5433/cpis?sslmode=disable",
            "postgres://cpis@127.0.0.1/cpis",
            "postgres://cpis@127.9.8.7/cpis?sslmode=prefer",
            "postgres://cpis@[::1]:5432/cpis",
            "postgres:///cpis",
            "postgres://%2Fvar%2Frun%2Fpostgresql/cpis",
            "postgres:///cpis?host=/var/run/postgresql",
            "postgres://cpis@db.example.org/cpis?host=/var/run/postgresql",
            "postgres://cpis@localhost,127.0.0.2/cpis",
            "sqlite://cpis.db",
        ] {
            assert_eq!(database_tls(url, false, no_env).expect(url), None, "{url}");
        }
    }

    #[test]
    fn libpq_variables_apply_where_the_url_is_silent() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &'static str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let remote_socketless = "postgres:///cpis";
        assert!(database_tls(
            remote_socketless,
            false,
            env(&[("PGHOST", "db.example.org")])
        )
        .is_err());
        assert_eq!(
            database_tls(
                remote_socketless,
                false,
                env(&[("PGHOST", "db.example.org"), ("PGSSLMODE", "verify-full")])
            )
            .unwrap(),
            None
        );
        assert_eq!(
            database_tls(
                "postgres://db.example.org/cpis",
                false,
                env(&[("PGSSLMODE", "require")])
            )
            .unwrap(),
            None
        );
        assert!(database_tls(
            "postgres://db.example.org/cpis?sslmode=prefer",
            false,
            env(&[("PGSSLMODE", "require")])
        )
        .is_err());
    }

    #[test]
    fn a_provider_key_without_an_issuer_is_not_verified() {
        let key = KeyConfig::Provider {
            source: KeySource::Jwks(url::Url::parse("https://idp.example.org/jwks").unwrap()),
            algorithms: vec![JwtAlgorithm::RS256],
            refresh: KeyRefresh::default(),
        };
        assert!(key.is_provider());
        let refused = require_issuer(Some(&key), None).unwrap_err().to_string();
        assert!(refused.contains("CPIS_JWT_ISSUER"), "{refused}");
        assert!(require_issuer(Some(&key), Some("  ")).is_err());
        assert!(require_issuer(Some(&key), Some("https://idp.example.org")).is_ok());
        let secret = KeyConfig::Secret("s".repeat(MIN_SECRET_BYTES));
        assert!(require_issuer(Some(&secret), None).is_ok());
        assert!(require_issuer(None, None).is_ok());
        let err = crate::auth::jwt::Verifier::new(&key, None, "cpis")
            .err()
            .unwrap();
        assert!(err.contains("CPIS_JWT_ISSUER"), "{err}");
        assert!(
            crate::auth::jwt::Verifier::new(&key, Some("https://idp.example.org"), "cpis").is_ok()
        );
    }
}
