//! Operational metrics in Prometheus text format (`GET /metrics`). One registry per
//! application, so two servers in one process (the tests) never mix their counts.
//!
//! No label ever holds personal data or an id: requests are labelled by route *pattern*
//! (`/FHIR/R4/Flag/{id}`), method and status; everything else by a fixed outcome name.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::db::{self, DbConn, DbPool};

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    /// Accesses handed to the audit writer and not yet taken into a batch.
    pub audit_queue_depth: IntGauge,
    pub audit_batch_accesses: Histogram,
    pub audit_commit_seconds: Histogram,
    deliveries: IntCounterVec,
    pool_wait_seconds: Histogram,
    pool_timeouts: IntCounter,
    pool_connections: IntGaugeVec,
    upload_entries: IntCounterVec,
    retention_purged: IntCounterVec,
    outbox_backlog: IntGauge,
    outbox_oldest_seconds: Gauge,
    subscriptions_in_error: IntGauge,
    /// Scheduled backups, once `enable_backups` has registered them (`CPIS_BACKUP_DIR`).
    backups: std::sync::OnceLock<BackupMetrics>,
}

/// The last good scheduled backup, as each scrape reads it (from `backup::BackupStatus`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastBackup {
    /// When it was taken (epoch ms).
    pub at_ms: i64,
    pub bytes: u64,
    /// How long it took, when this process took it.
    pub seconds: Option<f64>,
}

/// Where a scrape reads the last good backup from.
type LastBackupSource = Box<dyn Fn() -> Option<LastBackup> + Send + Sync>;

/// The scheduled backups' metrics, and where they are read from at each scrape.
struct BackupMetrics {
    last_good: LastBackupSource,
    runs: IntCounterVec,
    last_success: Gauge,
    age: Gauge,
    size: IntGauge,
    duration: Gauge,
}

/// How a notification attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryOutcome {
    Delivered,
    Failed,
    /// Not sent: its Subscription is off or in error.
    Abandoned,
}

/// What the scrape reads from the database each time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub outbox: i64,
    pub oldest_created_ms: Option<i64>,
    pub subscriptions_in_error: i64,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> prometheus::Result<Histogram> {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let metric = IntGauge::new(name, help)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// Registers `metric` in `registry` and hands it back.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// Latency buckets from 1 ms to 10 s.
fn seconds_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// Requests answered, and how long each took.
fn http_metrics(r: &Registry) -> prometheus::Result<(IntCounterVec, HistogramVec)> {
    let requests = counter(
        r,
        "cpis_http_requests_total",
        "HTTP requests answered, by route pattern, method and status.",
        &["route", "method", "status"],
    )?;
    let seconds = registered(
        r,
        HistogramVec::new(
            HistogramOpts::new(
                "cpis_http_request_duration_seconds",
                "Time to answer an HTTP request, by route pattern and method.",
            )
            .buckets(seconds_buckets()),
            &["route", "method"],
        )?,
    )?;
    Ok((requests, seconds))
}

/// The audit writer: its queue, its batches and their commits.
fn audit_metrics(r: &Registry) -> prometheus::Result<(IntGauge, Histogram, Histogram)> {
    let depth = gauge(
        r,
        "cpis_audit_queue_depth",
        "Audited requests waiting for the audit writer.",
    )?;
    let batch = histogram(
        r,
        "cpis_audit_batch_accesses",
        "Accesses written per audit transaction (group commit).",
        vec![
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
        ],
    )?;
    let commit = histogram(
        r,
        "cpis_audit_commit_seconds",
        "Time to write and commit one audit batch.",
        seconds_buckets(),
    )?;
    Ok((depth, batch, commit))
}

/// The database pool: waits for a connection, waits that timed out, connections by state.
fn pool_metrics(r: &Registry) -> prometheus::Result<(Histogram, IntCounter, IntGaugeVec)> {
    let wait = histogram(
        r,
        "cpis_db_pool_wait_seconds",
        "Time a request waited for a database connection.",
        seconds_buckets(),
    )?;
    let timeouts = registered(
        r,
        IntCounter::new(
            "cpis_db_pool_timeouts_total",
            "Waits for a database connection that timed out (answered 503).",
        )?,
    )?;
    let connections = registered(
        r,
        IntGaugeVec::new(
            Opts::new(
                "cpis_db_pool_connections",
                "Database pool connections, by state (in_use, idle).",
            ),
            &["state"],
        )?,
    )?;
    Ok((wait, timeouts, connections))
}

/// Notifications: delivery attempts, the outbox and the Subscriptions in error.
fn notification_metrics(
    r: &Registry,
) -> prometheus::Result<(IntCounterVec, IntGauge, Gauge, IntGauge)> {
    let deliveries = counter(
        r,
        "cpis_notification_deliveries_total",
        "Notification delivery attempts, by outcome (delivered, failed, abandoned).",
        &["outcome"],
    )?;
    let backlog = gauge(
        r,
        "cpis_notification_outbox_backlog",
        "Notifications not yet delivered.",
    )?;
    let oldest = registered(
        r,
        Gauge::new(
            "cpis_notification_outbox_oldest_age_seconds",
            "Age of the oldest undelivered notification (0 when none).",
        )?,
    )?;
    let in_error = gauge(
        r,
        "cpis_subscriptions_in_error",
        "Subscriptions whose status is error.",
    )?;
    Ok((deliveries, backlog, oldest, in_error))
}

impl Metrics {
    pub fn new() -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let (requests, request_seconds) = http_metrics(&r)?;
        let (audit_queue_depth, audit_batch_accesses, audit_commit_seconds) = audit_metrics(&r)?;
        let (pool_wait_seconds, pool_timeouts, pool_connections) = pool_metrics(&r)?;
        let (deliveries, outbox_backlog, outbox_oldest_seconds, subscriptions_in_error) =
            notification_metrics(&r)?;
        Ok(Metrics {
            requests,
            request_seconds,
            audit_queue_depth,
            audit_batch_accesses,
            audit_commit_seconds,
            deliveries,
            pool_wait_seconds,
            pool_timeouts,
            pool_connections,
            upload_entries: counter(
                &r,
                "cpis_upload_entries_total",
                "Entries of uploaded Bundles, by outcome (accepted, rejected).",
                &["outcome"],
            )?,
            retention_purged: counter(
                &r,
                "cpis_retention_purged_total",
                "Records removed by retention, by kind (plans, audit_events, reports).",
                &["kind"],
            )?,
            outbox_backlog,
            outbox_oldest_seconds,
            subscriptions_in_error,
            backups: std::sync::OnceLock::new(),
            registry: r,
        })
    }

    /// One answered request. `route` is the matched pattern, never the path.
    pub fn observe_request(&self, route: &str, method: &str, status: &str, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, status])
            .inc();
        self.request_seconds
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_delivery(&self, outcome: DeliveryOutcome) {
        let label = match outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Abandoned => "abandoned",
        };
        self.deliveries.with_label_values(&[label]).inc();
    }

    pub fn observe_upload(&self, accepted: usize, rejected: usize) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.upload_entries
            .with_label_values(&["accepted"])
            .inc_by(count(accepted));
        self.upload_entries
            .with_label_values(&["rejected"])
            .inc_by(count(rejected));
    }

    /// `n` records of one `kind` purged by retention (`plans`, `audit_events`, `reports`).
    pub fn observe_purged(&self, kind: &str, n: usize) {
        self.retention_purged
            .with_label_values(&[kind])
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Registers the scheduled backups' metrics, read from `last_good` at each scrape (once; a
    /// second call changes nothing).
    pub fn enable_backups(
        &self,
        last_good: impl Fn() -> Option<LastBackup> + Send + Sync + 'static,
    ) -> prometheus::Result<()> {
        if self.backups.get().is_some() {
            return Ok(());
        }
        let r = &self.registry;
        let plain = |name: &str, help: &str| -> prometheus::Result<Gauge> {
            let metric = Gauge::new(name, help)?;
            r.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let metrics = BackupMetrics {
            last_good: Box::new(last_good),
            runs: counter(
                r,
                "cpis_backups_total",
                "Scheduled backups attempted, by outcome (ok, failed).",
                &["outcome"],
            )?,
            last_success: plain(
                "cpis_backup_last_success_timestamp_seconds",
                "When the last good backup was taken (Unix time; 0 when there is none).",
            )?,
            age: plain(
                "cpis_backup_last_success_age_seconds",
                "Age of the last good backup (from 1970 when there is none).",
            )?,
            size: gauge(
                r,
                "cpis_backup_last_success_size_bytes",
                "Size of the last good backup.",
            )?,
            duration: plain(
                "cpis_backup_last_duration_seconds",
                "How long the last good backup this process took lasted.",
            )?,
        };
        for outcome in ["ok", "failed"] {
            metrics.runs.with_label_values(&[outcome]);
        }
        let _ = self.backups.set(metrics);
        Ok(())
    }

    /// One scheduled backup attempted.
    pub fn observe_backup(&self, ok: bool) {
        if let Some(b) = self.backups.get() {
            b.runs
                .with_label_values(&[if ok { "ok" } else { "failed" }])
                .inc();
        }
    }

    /// The scrape: reads what lives in the database and the pool, then renders everything.
    pub fn render(&self, pool: &DbPool, backlog: Option<Backlog>, now_ms: i64) -> String {
        let state = pool.state();
        let idle = i64::from(state.idle_connections);
        self.pool_connections.with_label_values(&["idle"]).set(idle);
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(state.connections) - idle);
        if let Some(backlog) = backlog {
            self.outbox_backlog.set(backlog.outbox);
            self.outbox_oldest_seconds.set(
                backlog
                    .oldest_created_ms
                    .map_or(0.0, |created| (now_ms - created).max(0) as f64 / 1000.0),
            );
            self.subscriptions_in_error
                .set(backlog.subscriptions_in_error);
        }
        if let Some(b) = self.backups.get() {
            let good = (b.last_good)();
            let at_ms = good.as_ref().map_or(0, |g| g.at_ms);
            b.last_success.set(at_ms as f64 / 1000.0);
            b.age.set((now_ms - at_ms).max(0) as f64 / 1000.0);
            b.size.set(
                good.as_ref()
                    .map_or(0, |g| i64::try_from(g.bytes).unwrap_or(i64::MAX)),
            );
            if let Some(seconds) = good.and_then(|g| g.seconds) {
                b.duration.set(seconds);
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics could not be rendered");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Reads the backlog the scrape reports.
pub fn backlog(conn: &mut DbConn) -> diesel::QueryResult<Backlog> {
    let (outbox, oldest_created_ms) = db::outbox::backlog(conn)?;
    Ok(Backlog {
        outbox,
        oldest_created_ms,
        subscriptions_in_error: db::subscriptions::count_with_status(conn, "error")?,
    })
}

/// Feeds the pool's waits into the metrics (an r2d2 event handler).
#[derive(Debug)]
pub struct PoolEvents(pub std::sync::Arc<Metrics>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl r2d2::HandleEvent for PoolEvents {
    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        self.0
            .pool_wait_seconds
            .observe(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, _event: r2d2::event::TimeoutEvent) {
        self.0.pool_timeouts.inc();
    }
}
