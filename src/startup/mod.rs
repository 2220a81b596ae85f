//! Building and running the application: the same path for `cpis serve` and the tests.

mod http;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;

use tokio::sync::Notify;

use crate::app::AppState;
use crate::audit::Auditor;
use crate::auth::jwt::Verifier;
use crate::config::Config;
use crate::db::{self, DbPool};
use crate::endpoints::EndpointPolicy;
use crate::lifecycle::{Phase, Readiness};
use crate::metrics::{Metrics, PoolEvents};
use crate::notify;
use crate::validation::Profiles;
use http::{http_server, metrics_server, starting_server, MetricsServer};

pub struct Application {
    port: u16,
    server: Server,
    /// `CPIS_METRICS_BIND`: `/metrics` without a token, for scrapers on a private network.
    metrics_server: Option<MetricsServer>,
    pool: DbPool,
    base_url: String,
    /// Delivers the notification outbox; running in the background unless the configuration
    /// says not to (then a test drives it: `Dispatcher::deliver_pending`).
    dispatcher: notify::Dispatcher,
    delivering: Option<notify::Running>,
    readiness: Readiness,
    metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(String),
    #[error("JWT key: {0}")]
    Key(String),
    #[error("profiles: {0}")]
    Profiles(String),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
}

/// Opens the pool and runs the migrations (what `cpis migrate` does).
pub fn prepare_database(config: &Config) -> Result<DbPool, StartupError> {
    open_database(config, db::PoolUse::Command)
}

fn open_database(config: &Config, usage: db::PoolUse) -> Result<DbPool, StartupError> {
    if let Some(reason) = &config.database_plaintext {
        tracing::warn!(
            reason,
            "DATABASE IN CLEAR TEXT: CPIS_DATABASE_ALLOW_PLAINTEXT=1 lets children's data cross the network unencrypted; set sslmode=verify-full"
        );
    }
    let pool = db::pool_for(
        &config.database_url,
        config.db_pool_size,
        config.db_timeout,
        usage,
    )
    .map_err(StartupError::Database)?;
    let mut conn = pool
        .get()
        .map_err(|e| StartupError::Database(format!("cannot connect: {e}")))?;
    let applied = db::migrate(&mut conn).map_err(StartupError::Database)?;
    if applied > 0 {
        tracing::info!(migrations.applied = applied, "database migrated");
    }
    db::refresh_statistics(&mut conn);
    Ok(pool)
}

/// The token verifier `config` asks for (the sandbox's development secret said loudly).
fn verifier(config: &Config) -> Result<Verifier, StartupError> {
    let key = config.effective_key();
    if config.uses_sandbox_secret() {
        tracing::warn!("SANDBOX: tokens are verified with the fixed development secret; never use this in production");
    }
    Verifier::with_claims(
        &key,
        config.jwt_issuer.as_deref(),
        &config.jwt_audience,
        config.claims.clone(),
    )
    .map_err(StartupError::Key)
}

/// The sandbox's sample LAs and plans (`CPIS_SANDBOX`).
fn seed_sandbox(config: &Config, pool: &DbPool, profiles: &Profiles) -> Result<(), StartupError> {
    let mut conn = pool
        .get()
        .map_err(|e| StartupError::Database(e.to_string()))?;
    crate::sandbox::seed(&mut conn, profiles, config.clock.now_ms())
        .map_err(|e| StartupError::Database(e.to_string()))
}

/// The notification dispatcher, delivering in the background unless `config` leaves it to a
/// test (`Dispatcher::deliver_pending`).
fn start_dispatcher(
    config: &Config,
    pool: &DbPool,
    endpoints: &Arc<EndpointPolicy>,
    metrics: &Arc<Metrics>,
    wake: &Arc<Notify>,
) -> Result<(notify::Dispatcher, Option<notify::Running>), StartupError> {
    let dispatcher = notify::Dispatcher::new(
        pool.clone(),
        config.delivery.clone(),
        endpoints.clone(),
        config.clock.clone(),
        metrics.clone(),
    )
    .map_err(StartupError::Database)?;
    let delivering = if config.dispatcher {
        Some(
            notify::start(dispatcher.clone(), wake)
                .map_err(|e| StartupError::Database(format!("notification dispatcher: {e}")))?,
        )
    } else {
        None
    };
    Ok((dispatcher, delivering))
}

/// The background upkeep, each until `alive` is gone: the checkpointer, the daily retention
/// and, on SQLite with `CPIS_BACKUP_DIR`, the scheduled backups, whose status it returns (what
/// `/_ready` says of them).
fn start_maintenance(
    config: &Config,
    pool: &DbPool,
    metrics: &Arc<Metrics>,
    alive: &Arc<Notify>,
) -> Result<Option<Arc<crate::backup::BackupStatus>>, StartupError> {
    db::start_checkpointer(pool.clone(), Arc::downgrade(alive))
        .map_err(|e| StartupError::Database(format!("checkpoint task: {e}")))?;
    crate::retention::start_daily(
        pool.clone(),
        config.retention(),
        config.clock.clone(),
        Arc::downgrade(alive),
        metrics.clone(),
    )
    .map_err(|e| StartupError::Database(format!("retention task: {e}")))?;
    let (Some(schedule), db::Backend::Sqlite(path)) = (
        &config.backup,
        db::Backend::from_url(&config.database_url).map_err(StartupError::Database)?,
    ) else {
        return Ok(None);
    };
    let status = crate::backup::schedule::start(
        path.into(),
        schedule.clone(),
        config.clock.clone(),
        Arc::downgrade(alive),
        metrics.clone(),
    )
    .map_err(|e| StartupError::Database(format!("backup task: {e}")))?;
    Ok(Some(status))
}

impl Application {
    /// Binds (port 0 picks a free port), migrates and seeds the sandbox if asked (the port
    /// answers 503 "starting" meanwhile), and starts the server.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let listener = TcpListener::bind(&config.bind).map_err(|source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        })?;
        let starting = starting_server(&listener).map_err(|source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        })?;
        let stand_in = starting.handle();
        let serving = tokio::spawn(starting);
        // Let the stand-in start its threads before this one is busy migrating.
        tokio::task::yield_now().await;
        let prepared = Self::prepare(config, listener);
        // The port is the real server's only once the stand-in has let go of it.
        stand_in.stop(false).await;
        let _ = serving.await;
        let mut app = prepared?;
        if let Some(metrics) = app.metrics_server.as_mut() {
            metrics.start();
        }
        app.readiness.set(Phase::Ready);
        Ok(app)
    }

    fn prepare(config: Config, listener: TcpListener) -> Result<Application, StartupError> {
        let metrics =
            Arc::new(Metrics::new().map_err(|e| StartupError::Database(format!("metrics: {e}")))?);
        let pool = open_database(
            &config,
            db::PoolUse::Server(Some(Box::new(PoolEvents(metrics.clone())))),
        )?;
        let verifier = verifier(&config)?;
        let profiles = Arc::new(Profiles::load().map_err(StartupError::Profiles)?);
        if config.sandbox {
            seed_sandbox(&config, &pool, &profiles)?;
        }
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        })?;
        let base_url = config
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}/FHIR/R4"));
        let endpoints = Arc::new(EndpointPolicy {
            allowed_hosts: config.notify_allowed_hosts.clone(),
            allow_private_networks: config.notify_allow_private_networks,
        });
        let wake_dispatcher = Arc::new(Notify::new());
        let auditor = Auditor::start(
            config.database_url.clone(),
            wake_dispatcher.clone(),
            config.attendance,
            metrics.clone(),
        )
        .map_err(|e| StartupError::Database(format!("audit writer: {e}")))?;
        let (dispatcher, delivering) =
            start_dispatcher(&config, &pool, &endpoints, &metrics, &wake_dispatcher)?;
        let backups = start_maintenance(&config, &pool, &metrics, &wake_dispatcher)?;
        let readiness = Readiness::default();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            base_url: base_url.clone(),
            profiles,
            max_body_bytes: config.max_body_bytes,
            auditor,
            endpoints,
            max_bundle_entries: config.max_bundle_entries,
            clock: config.clock.clone(),
            cors: !config.cors_origins.is_empty(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            backups,
        });
        if let Some(keys) = verifier.provider_keys() {
            // Fetched at once, so a provider that cannot be reached shows in the log at start.
            tokio::spawn(async move { keys.refresh().await });
        }
        let metrics_server =
            match &config.metrics_bind {
                None => None,
                Some(bind) => Some(metrics_server(bind, state.clone()).map_err(|source| {
                    StartupError::Bind {
                        bind: bind.clone(),
                        source,
                    }
                })?),
            };
        let server = http_server(&config, state, web::Data::new(verifier), listener)?;
        Ok(Application {
            port: address.port(),
            server,
            metrics_server,
            dispatcher,
            delivering,
            pool,
            base_url,
            readiness,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn pool(&self) -> DbPool {
        self.pool.clone()
    }

    /// A handle to stop the server gracefully.
    /// The notification dispatcher (for a test to run its due work).
    pub fn dispatcher(&self) -> notify::Dispatcher {
        self.dispatcher.clone()
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Starting, ready or stopping, as `/_ready` reports it.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The address of the tokenless metrics port (`CPIS_METRICS_BIND`), when configured.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics_server.as_ref().map(|m| m.address)
    }

    /// Serves until the server is stopped (`handle().stop(true)`: in-flight requests finish,
    /// and with them their audit records, since a response waits for its AuditEvent's
    /// commit); then stops the metrics port and the dispatcher, whose round under way is
    /// recorded while what it had not claimed stays in the outbox.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.readiness.set(Phase::Stopping);
        if let Some(metrics) = self.metrics_server {
            metrics.stop().await;
        }
        if let Some(delivering) = self.delivering {
            let _ = tokio::task::spawn_blocking(move || delivering.stop()).await;
        }
        served
    }
}
