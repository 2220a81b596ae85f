//! Retention (SPEC §7): plans and their Flags leave the register `retention_months` after the
//! plan ended (its `period.end`, or, without one, when it was last changed once finished,
//! cancelled or withdrawn; a deleted plan's tombstone likewise); AuditEvents after
//! `audit_retention_months`. Purged records are gone (404), history and index rows included.
//! Runs daily inside the server and on demand with `cpis purge`; the clock is a parameter.

use std::sync::Weak;
use std::time::Duration;

use chrono::Months;
use diesel::QueryResult;

use crate::clock::{day_start_ms, to_datetime, uk_date};
pub use crate::db::retention::{remove_unchanged, Expired};
use crate::db::{retention, write_transaction, DbConn, DbPool};

/// How long records are kept.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub plan_months: u32,
    pub audit_months: u32,
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub plans: usize,
    pub audit_events: usize,
    /// Upload reports, kept as long as the plans they speak of.
    pub reports: usize,
}

/// Plans are removed in chunks, each in its own transaction.
const CHUNK: i64 = 500;

fn months_before(now_ms: i64, months: u32) -> i64 {
    to_datetime(now_ms)
        .checked_sub_months(Months::new(months))
        .map_or(i64::MIN, |t| t.timestamp_millis())
}

/// When a plan's time is up: its `period.end` day is before `day` (a date-index day key, of the
/// calendar in England), or, without an end, it was closed before `instant`.
#[derive(Debug, Clone, Copy)]
pub struct PlanCutoff {
    day: i64,
    instant: i64,
}

impl PlanCutoff {
    pub fn new(now_ms: i64, months: u32) -> PlanCutoff {
        let day = uk_date(now_ms)
            .checked_sub_months(Months::new(months))
            .map_or(i64::MIN, day_start_ms);
        PlanCutoff {
            day,
            instant: months_before(now_ms, months),
        }
    }
}

/// Up to a chunk of plans past retention at `cutoff` (SPEC §7): with a `period.end`, the
/// months after it, whatever their status; without one, finished, cancelled, withdrawn or
/// deleted and unchanged since before the cutoff.
pub fn expired_plans(conn: &mut DbConn, cutoff: PlanCutoff) -> QueryResult<Vec<Expired>> {
    retention::expired_plans(conn, cutoff.day, cutoff.instant, CHUNK)
}

/// Purges everything past retention at `now_ms`.
pub fn purge(conn: &mut DbConn, policy: RetentionPolicy, now_ms: i64) -> QueryResult<Purged> {
    let cutoff = PlanCutoff::new(now_ms, policy.plan_months);
    let mut purged = Purged::default();
    // Each chunk is found and removed in one write transaction, so nothing can change a plan
    // between the finding and the removing; `remove_unchanged` holds even without that.
    loop {
        let (found, removed) = write_transaction(conn, |conn| {
            let expired = expired_plans(conn, cutoff)?;
            Ok::<_, diesel::result::Error>((expired.len(), remove_unchanged(conn, &expired)?))
        })?;
        purged.plans += removed;
        if found == 0 {
            break;
        }
    }
    purged.reports = write_transaction(conn, |conn| {
        retention::remove_reports_before(conn, cutoff.instant)
    })?;
    let audit_cutoff = months_before(now_ms, policy.audit_months);
    purged.audit_events = write_transaction(conn, |conn| {
        retention::remove_audit_events_before(conn, audit_cutoff)
    })?;
    Ok(purged)
}

/// Runs `purge` once a day (the first a minute after start) until `alive` is gone.
pub fn start_daily(
    pool: DbPool,
    policy: RetentionPolicy,
    clock: crate::clock::Clock,
    alive: Weak<tokio::sync::Notify>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cpis-retention".into())
        .spawn(move || {
            let mut wait = Duration::from_secs(60);
            loop {
                // Sleep in short steps so the thread ends soon after its application.
                let mut slept = Duration::ZERO;
                while slept < wait {
                    if alive.upgrade().is_none() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    slept += Duration::from_secs(1);
                }
                if let Some(purged) = run_logged(&pool, policy, clock.now_ms()) {
                    for (kind, n) in [
                        ("plans", purged.plans),
                        ("audit_events", purged.audit_events),
                        ("reports", purged.reports),
                    ] {
                        metrics.observe_purged(kind, n);
                    }
                }
                wait = Duration::from_secs(24 * 60 * 60);
            }
        })
        .map(|_| ())
}

/// One purge at `now` (the application's clock), with its counts logged (never which records).
pub fn run_logged(pool: &DbPool, policy: RetentionPolicy, now: i64) -> Option<Purged> {
    let result = pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| purge(&mut conn, policy, now).map_err(|e| e.to_string()));
    match result {
        Ok(purged) => {
            tracing::info!(
                purged.plans = purged.plans,
                purged.audit_events = purged.audit_events,
                purged.reports = purged.reports,
                retention.plan_months = policy.plan_months,
                retention.audit_months = policy.audit_months,
                "retention purge"
            );
            Some(purged)
        }
        Err(e) => {
            tracing::error!(error = %e, "retention purge failed");
            None
        }
    }
}
