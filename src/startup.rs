//! Building and running the application: the same path for `cpis serve` and the tests.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use tokio::sync::Notify;

use crate::api::{self, AppState};
use crate::audit::Auditor;
use crate::auth::jwt::Verifier;
use crate::config::Config;
use crate::db::{self, DbPool};
use crate::endpoints::EndpointPolicy;
use crate::notify;
use crate::validation::Profiles;

pub struct Application {
    port: u16,
    server: Server,
    pool: DbPool,
    base_url: String,
    /// Delivers the notification outbox; running in the background unless the configuration
    /// says not to (then a test drives it: `Dispatcher::deliver_pending`).
    dispatcher: notify::Dispatcher,
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
    let pool = db::pool(&config.database_url, config.db_pool_size, config.db_timeout)
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

impl Application {
    /// Migrates, seeds the sandbox if asked, binds (port 0 picks a free port) and builds the
    /// server. Nothing is served until `run_until_stopped`.
    pub fn build(config: Config) -> Result<Application, StartupError> {
        let pool = prepare_database(&config)?;
        let key = config.effective_key();
        if config.uses_sandbox_secret() {
            tracing::warn!("SANDBOX: tokens are verified with the fixed development secret; never use this in production");
        }
        let verifier = Verifier::new(&key, config.jwt_issuer.as_deref(), &config.jwt_audience)
            .map_err(|e| StartupError::Key(e.to_string()))?;
        let profiles = Arc::new(Profiles::load().map_err(StartupError::Profiles)?);
        if config.sandbox {
            let mut conn = pool
                .get()
                .map_err(|e| StartupError::Database(e.to_string()))?;
            crate::sandbox::seed(&mut conn, &profiles)
                .map_err(|e| StartupError::Database(e.to_string()))?;
        }
        let listener = TcpListener::bind(&config.bind).map_err(|source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        })?;
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
        )
        .map_err(|e| StartupError::Database(format!("audit writer: {e}")))?;
        let dispatcher = notify::Dispatcher::new(
            pool.clone(),
            config.delivery.clone(),
            endpoints.clone(),
            config.clock.clone(),
        )
        .map_err(StartupError::Database)?;
        if config.dispatcher {
            notify::start(dispatcher.clone(), &wake_dispatcher)
                .map_err(|e| StartupError::Database(format!("notification dispatcher: {e}")))?;
        }
        db::start_checkpointer(pool.clone(), Arc::downgrade(&wake_dispatcher))
            .map_err(|e| StartupError::Database(format!("checkpoint task: {e}")))?;
        crate::retention::start_daily(
            pool.clone(),
            config.retention(),
            Arc::downgrade(&wake_dispatcher),
        )
        .map_err(|e| StartupError::Database(format!("retention task: {e}")))?;
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
        });
        let verifier = web::Data::new(verifier);
        let max_body = config.max_body_bytes;
        let cors_origins = config.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                // Innermost first: HEAD and POST _search become the GETs they stand for, after
                // CORS has answered preflights and before routing.
                .wrap(actix_web::middleware::from_fn(api::normalise::normalise))
                .wrap(actix_web::middleware::Condition::new(
                    !cors_origins.is_empty(),
                    api::cors::layer(&cors_origins),
                ))
                .wrap(actix_web::middleware::from_fn(crate::telemetry::request_id))
                .wrap(TracingLogger::<crate::telemetry::PrivacyRootSpan>::new())
                // gzip or br when the client asks (`Accept-Encoding`).
                .wrap(actix_web::middleware::Compress::default())
                .app_data(state.clone())
                .app_data(verifier.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .configure(api::configure)
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        })?;
        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        // Database work runs on each worker's blocking threads (`db::run`), and no more of it can
        // run at once than the pool has connections: threads beyond that only wait for one, and
        // each keeps an allocator heap of its own (RSS that grows with load and stays).
        let blocking = usize::try_from(config.db_pool_size)
            .unwrap_or(1)
            .div_ceil(workers.max(1))
            + 2;
        server = server
            .workers(workers)
            .worker_max_blocking_threads(blocking);
        Ok(Application {
            port: address.port(),
            server: server.run(),
            dispatcher,
            pool,
            base_url,
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

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
