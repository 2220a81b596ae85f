//! The notification dispatcher (SPEC §3 Subscription): delivers the durable outbox to the
//! LAs' rest-hook endpoints, at least once.
//!
//! It wakes when the audit writer queues notifications, and every `poll` otherwise (for
//! retries, rows left by a process that died, or other processes' rows). Each claimed row is
//! POSTed with its stable `X-CPIS-Notification-Id`, concurrently and with a per-request
//! timeout, so one slow endpoint cannot hold up the others. A failure is retried with
//! exponential backoff and jitter; the Subscription's health is updated either way.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::db::outbox::{self, Due};
use crate::db::{write_transaction, DbPool};
use crate::endpoints::{check_header, EndpointPolicy};
use crate::error::FhirError;
use crate::fhir::audit_event::reaches_attendance_pattern;
use crate::fhir::subscription::SubscriptionStatus;
use crate::metrics::{DeliveryOutcome, Metrics};
use crate::service::subscription::record_delivery;

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Per-request timeout.
    pub timeout: Duration,
    /// The first retry's delay; doubled per failure up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How often the outbox is looked at when nothing wakes the dispatcher.
    pub poll: Duration,
    /// Rows claimed per round.
    pub batch: i64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(5),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            poll: Duration::from_secs(1),
            batch: 64,
        }
    }
}

impl DeliveryConfig {
    /// The delay before attempt `attempts + 1`: exponential, capped, with full jitter in its
    /// upper half so that retries from many rows do not arrive together.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
        let ceiling = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max_backoff);
        ceiling.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }

    /// How long a claim lasts: longer than any delivery can take.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(10)
    }
}

/// Delivers the outbox: claims what is due, POSTs it, records the outcomes. The server runs
/// one in the background (`start`); a test drives one step by step (`deliver_pending`).
#[derive(Clone)]
pub struct Dispatcher {
    pool: DbPool,
    client: reqwest::Client,
    config: DeliveryConfig,
    policy: Arc<EndpointPolicy>,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub fn new(
        pool: DbPool,
        config: DeliveryConfig,
        policy: Arc<EndpointPolicy>,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<Dispatcher, String> {
        // Every name is resolved through the endpoint policy, and the client connects only to
        // the addresses it allowed; redirects are not followed (they could point anywhere), and
        // no proxy of the environment (`HTTP_PROXY`, `ALL_PROXY`, …) is used: through one, the
        // address checked would be the proxy's, and the proxy would reach the endpoint.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(policy.resolver())
            .build()
            .map_err(|e| format!("notification HTTP client: {e}"))?;
        Ok(Dispatcher {
            pool,
            client,
            config,
            policy,
            clock,
            metrics,
        })
    }

    /// Delivers everything due now, round after round, until nothing is; returns how many
    /// rows it handled. Every attempt has been answered and recorded when it returns.
    pub async fn deliver_pending(&self) -> usize {
        let mut handled = 0;
        loop {
            let n = self.round().await;
            handled += n;
            if n == 0 {
                return handled;
            }
        }
    }

    /// Runs until `wake` is gone or `stop` is raised: a round whenever the audit writer queues
    /// notifications, and every `poll` otherwise. A round under way when asked to stop is
    /// finished and recorded (each delivery is bounded by its timeout); what is not yet claimed
    /// stays in the outbox for the next start.
    async fn run(self, wake: Weak<Notify>, stop: Arc<StopSignal>) {
        while !stop.raised() {
            let delivered = self.round().await;
            // A full batch means more may be waiting: go again at once.
            if delivered >= usize::try_from(self.config.batch).unwrap_or(usize::MAX) {
                continue;
            }
            let Some(notify) = wake.upgrade() else {
                return;
            };
            tokio::select! {
                _ = tokio::time::timeout(self.config.poll, notify.notified()) => {}
                _ = stop.wait() => {}
            }
        }
    }

    /// Claims and delivers one batch; returns how many rows it handled.
    async fn round(&self) -> usize {
        let now = self.clock.now_ms();
        let lease = i64::try_from(self.config.lease().as_millis()).unwrap_or(i64::MAX / 2);
        let (pool, batch) = (self.pool.clone(), self.config.batch);
        let claimed = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            outbox::claim(&mut conn, now, now.saturating_add(lease), batch)
                .map_err(|e| e.to_string())
        })
        .await;
        let due = match claimed {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "notification outbox not readable");
                return 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, "notification claim task failed");
                return 0;
            }
        };
        let handled = due.len();
        let mut deliveries = tokio::task::JoinSet::new();
        for row in due {
            let this = self.clone();
            deliveries.spawn(async move { this.deliver(row).await });
        }
        let mut attempts = Vec::with_capacity(handled);
        while let Some(joined) = deliveries.join_next().await {
            if let Ok(attempt) = joined {
                attempts.push(attempt);
            }
        }
        record(&self.pool, attempts, self.clock.now_ms()).await;
        handled
    }

    /// Sends one notification (or abandons it when its Subscription is off).
    async fn deliver(&self, row: Due) -> Attempt {
        let subscription: Value = serde_json::from_str(&row.subscription).unwrap_or(Value::Null);
        let outcome = if !SubscriptionStatus::parse(&row.subscription_status).delivers() {
            Outcome::Abandoned
        } else {
            match post(&self.client, &self.policy, &subscription, &row).await {
                Ok(()) => Outcome::Delivered,
                Err(e) => Outcome::Failed(e),
            }
        };
        self.metrics.observe_delivery(match &outcome {
            Outcome::Delivered => DeliveryOutcome::Delivered,
            Outcome::Failed(_) => DeliveryOutcome::Failed,
            Outcome::Abandoned => DeliveryOutcome::Abandoned,
        });
        match &outcome {
            Outcome::Delivered => {
                tracing::info!(notification.id = %row.id, attempts = row.attempts + 1, "notification delivered");
            }
            Outcome::Failed(e) => {
                tracing::warn!(notification.id = %row.id, subscription.id = %row.subscription_id, attempts = row.attempts + 1, error = %e, "notification delivery failed");
            }
            Outcome::Abandoned => {}
        }
        let backoff = self.config.backoff(row.attempts).as_millis();
        let next_attempt_ms = self
            .clock
            .now_ms()
            .saturating_add(i64::try_from(backoff).unwrap_or(i64::MAX / 2));
        Attempt {
            row,
            outcome,
            next_attempt_ms,
        }
    }
}

/// Asks a running dispatcher to stop.
#[derive(Default)]
pub struct StopSignal {
    raised: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl StopSignal {
    fn raised(&self) -> bool {
        self.raised.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        if !self.raised() {
            notified.await;
        }
    }
}

/// A dispatcher running on its own thread.
pub struct Running {
    stop: Arc<StopSignal>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    /// Stops the dispatcher once its round under way is recorded, and waits for that.
    pub fn stop(self) {
        self.stop
            .raised
            .store(true, std::sync::atomic::Ordering::Release);
        self.stop.notify.notify_waiters();
        if self.thread.join().is_err() {
            tracing::error!("the notification dispatcher panicked");
        }
    }
}

/// Starts `dispatcher` on its own thread. It stops when `wake` is dropped (the application
/// that owned it has gone), or when asked (`Running::stop`).
pub fn start(dispatcher: Dispatcher, wake: &Arc<Notify>) -> std::io::Result<Running> {
    let wake = Arc::downgrade(wake);
    let stop = Arc::new(StopSignal::default());
    let signal = stop.clone();
    std::thread::Builder::new()
        .name("cpis-notify".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "notification dispatcher could not start");
                    return;
                }
            };
            runtime.block_on(dispatcher.run(wake, signal));
        })
        .map(|thread| Running { stop, thread })
}

/// One delivery attempt's result, to be recorded.
struct Attempt {
    row: Due,
    outcome: Outcome,
    /// When the row is due again if the attempt failed.
    next_attempt_ms: i64,
}

/// Records a round's outcomes, and each Subscription's health, in one write transaction: a
/// write per delivery would compete with the audit writer (which every audited lookup waits on)
/// for SQLite's one write lock hundreds of times a second.
async fn record(pool: &DbPool, attempts: Vec<Attempt>, now: i64) {
    if attempts.is_empty() {
        return;
    }
    let pool = pool.clone();
    let recorded = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        write_transaction(&mut conn, |conn| {
            for attempt in &attempts {
                let id = &attempt.row.id;
                match &attempt.outcome {
                    Outcome::Delivered => outbox::delivered(conn, id, now)?,
                    Outcome::Failed(e) => outbox::failed(conn, id, attempt.next_attempt_ms, e)?,
                    Outcome::Abandoned => outbox::abandoned(conn, id, now, ABANDONED)?,
                }
                let failure = match &attempt.outcome {
                    Outcome::Delivered => None,
                    Outcome::Failed(e) => Some(e.as_str()),
                    Outcome::Abandoned => continue,
                };
                record_delivery(conn, &attempt.row.subscription_id, failure, now)?;
            }
            Ok::<_, FhirError>(())
        })
        .map_err(|e| e.to_string())
    })
    .await;
    if let Ok(Err(e)) | Err(e) = recorded.map_err(|e| e.to_string()) {
        // The leases run out and the rows are tried again: at least once, never lost.
        tracing::warn!(error = %e, "notification outcomes not recorded");
    }
}

/// Why an abandoned notification was closed.
const ABANDONED: &str = "not delivered: the subscription is off";

enum Outcome {
    Delivered,
    Failed(String),
    Abandoned,
}

/// Set (`true`) on the notification of the access that first brings a child to a
/// repeated-attendance pattern (`crate::attendance`).
pub const ATTENDANCE_PATTERN_HEADER: &str = "X-CPIS-Attendance-Pattern";

/// What a failed delivery records in `Subscription.error`: nothing an LA could use to map the
/// network the server sits in (the detail goes to the server's log only).
const DELIVERY_FAILED: &str = "delivery failed";

async fn post(
    client: &reqwest::Client,
    policy: &EndpointPolicy,
    subscription: &Value,
    row: &Due,
) -> Result<(), String> {
    let endpoint = subscription
        .pointer("/channel/endpoint")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The policy of now, not of when the Subscription was made: tightening it stops deliveries.
    let url = policy.check_url(endpoint).map_err(|reason| {
        tracing::warn!(notification.id = %row.id, subscription.id = %row.subscription_id, reason, "endpoint refused by the policy");
        DELIVERY_FAILED.to_string()
    })?;
    let mut request = client
        .post(url)
        .header("Content-Type", "application/fhir+json")
        .header("X-CPIS-Notification-Id", &row.id);
    // The access that first brings a child to a repeated-attendance pattern: a task to raise.
    let audience = crate::audit::Audience::La {
        ods: &row.la_ods,
        pattern_marked: row.pattern_marked.unwrap_or(false),
    };
    let payload = crate::audit::render(&row.access, audience).map_err(|cause| {
        tracing::error!(notification.id = %row.id, cause, "stored access cannot be rendered");
        DELIVERY_FAILED.to_string()
    })?;
    // The column says it; an access kept as a document before the column existed, its JSON.
    let legacy = !row.access.content.is_empty();
    if row.pattern_marked == Some(true)
        || (legacy
            && reaches_attendance_pattern(&serde_json::from_str(&payload).unwrap_or(Value::Null)))
    {
        request = request.header(ATTENDANCE_PATTERN_HEADER, "true");
    }
    let mut request = request.body(payload);
    let headers = subscription
        .pointer("/channel/header")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|h| check_header(h).is_ok());
    for header in headers {
        if let Some((name, value)) = header.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    let response = request.send().await.map_err(|e| {
        // The Subscription, never the endpoint: its URL may carry the LA's secret.
        tracing::warn!(notification.id = %row.id, subscription.id = %row.subscription_id, error = %send_error(e), "notification not sent");
        DELIVERY_FAILED.to_string()
    })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "endpoint answered HTTP {}",
            response.status().as_u16()
        ))
    }
}

/// Why a request could not be sent, for the log: the error and its causes, without the URL
/// (an endpoint's query may hold the LA's secret).
fn send_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_send_error_is_told_without_the_endpoint_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let err = client
            .post(format!("http://127.0.0.1:{closed}/hook?key=la-secret-42"))
            .send()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("la-secret-42"),
            "reqwest names the URL"
        );
        let told = send_error(err);
        assert!(!told.contains("la-secret-42"), "{told}");
        assert!(!told.contains("/hook"), "{told}");
        assert!(told.contains("error sending request"), "{told}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let config = DeliveryConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..DeliveryConfig::default()
        };
        for (attempts, ceiling) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (40, 1000),
        ] {
            let d = config.backoff(attempts).as_millis();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "attempt {attempts}: {d} ms not in [{}, {ceiling}]",
                ceiling / 2
            );
        }
    }
}
