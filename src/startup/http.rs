//! The HTTP servers `startup` runs: the application's (its middleware and the three faces of the
//! server), the stand-in that answers 503 while the database is prepared, and the tokenless
//! metrics port.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use super::StartupError;
use crate::api;
use crate::app::AppState;
use crate::auth::jwt::Verifier;
use crate::config::Config;
use crate::lifecycle::Phase;

/// The HTTP server on `listener`: its middleware, application data and the three faces of the
/// server (the viewer, the native API, NHS England's views), with as many workers and
/// blocking threads as `config` allows.
pub(super) fn http_server(
    config: &Config,
    state: web::Data<AppState>,
    verifier: web::Data<Verifier>,
    listener: TcpListener,
) -> Result<Server, StartupError> {
    let max_body = config.max_body_bytes;
    let cors_origins = config.cors_origins.clone();
    let nhs_views = crate::views::Served(config.nhs_views);
    let viewer = config.viewer.enabled.then(|| {
        web::Data::new(crate::viewer::Viewer::new(
            config.viewer.clone(),
            &state.base_url,
            config.claims.clone(),
        ))
    });
    let server = HttpServer::new(move || {
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
            // Outermost: sees every answer as sent, for its log line and metrics.
            .wrap(actix_web::middleware::from_fn(crate::telemetry::observe))
            .app_data(state.clone())
            .app_data(verifier.clone())
            .app_data(nhs_views)
            .app_data(web::PayloadConfig::new(max_body))
            // Each face of the server on its own paths: the viewer, the native API and NHS
            // England's views.
            .configure(|cfg| crate::viewer::configure(cfg, viewer.as_ref()))
            .configure(api::configure)
            .configure(crate::views::configure)
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
    Ok(server
        .workers(workers)
        .worker_max_blocking_threads(blocking)
        // SIGTERM/SIGINT are `cli::serve`'s: readiness goes 503 first (`lifecycle`).
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        .run())
}

/// What the port answers while the database is migrated: 503, readiness "starting".
pub(super) fn starting_server(listener: &TcpListener) -> std::io::Result<Server> {
    let listener = listener.try_clone()?;
    Ok(
        HttpServer::new(|| App::new().default_service(web::to(starting)))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run(),
    )
}

async fn starting(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    match req.path() {
        "/_ready" => api::health::ready_answer(Phase::Starting),
        "/_health" => actix_web::HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(serde_json::json!({"status": "starting", "database": "migrating"})),
        _ => crate::error::FhirError::Unavailable("the server is starting".into()).error_response(),
    }
}

/// The tokenless metrics port, bound at build and served from `start`.
pub(super) struct MetricsServer {
    pub(super) address: std::net::SocketAddr,
    handle: actix_web::dev::ServerHandle,
    server: Option<Server>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl MetricsServer {
    pub(super) fn start(&mut self) {
        if let Some(server) = self.server.take() {
            self.serving = Some(tokio::spawn(server));
        }
    }

    pub(super) async fn stop(self) {
        self.handle.stop(true).await;
        if let Some(serving) = self.serving {
            let _ = serving.await;
        }
    }
}

/// `CPIS_METRICS_BIND`: `GET /metrics` without a token, nothing else.
pub(super) fn metrics_server(
    bind: &str,
    state: web::Data<AppState>,
) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(bind)?;
    let address = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(api::metrics::scrape_open))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(MetricsServer {
        address,
        handle: server.handle(),
        server: Some(server),
        serving: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn while_the_database_is_prepared_the_port_answers_503_starting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = starting_server(&listener).unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let client = reqwest::Client::new();
        let ready = client
            .get(format!("http://{address}/_ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 503);
        assert!(ready.headers().contains_key("retry-after"));
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "starting");
        let health = client
            .get(format!("http://{address}/_health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 503);
        let fhir = client
            .get(format!("http://{address}/FHIR/R4/metadata"))
            .send()
            .await
            .unwrap();
        assert_eq!(fhir.status(), 503);
        let outcome: serde_json::Value = fhir.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        handle.stop(false).await;
    }
}
