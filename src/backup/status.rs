//! The last good scheduled backup and the last failure, for `/metrics` and `/_ready`.

use serde_json::{json, Value};

use super::Schedule;

/// A backup in the backup directory, finished and sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Good {
    /// Its file name (dated: `cpis-20261202T012432Z.db`).
    pub file: String,
    /// When it was taken (epoch ms, the server's clock).
    pub at_ms: i64,
    pub bytes: u64,
    /// How long it took, when this process took it.
    pub seconds: Option<f64>,
}

/// A scheduled backup that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub at_ms: i64,
    pub error: String,
}

#[derive(Debug, Default)]
struct Last {
    good: Option<Good>,
    failure: Option<Failure>,
}

/// Shared by the scheduler (which writes it) and the probes (which read it).
#[derive(Debug)]
pub struct BackupStatus {
    schedule: Schedule,
    last: parking_lot::Mutex<Last>,
}

impl BackupStatus {
    pub fn new(schedule: Schedule) -> BackupStatus {
        BackupStatus {
            schedule,
            last: parking_lot::Mutex::default(),
        }
    }

    pub fn succeeded(&self, good: Good) {
        self.last.lock().good = Some(good);
    }

    pub fn failed(&self, failure: Failure) {
        self.last.lock().failure = Some(failure);
    }

    pub fn last_good(&self) -> Option<Good> {
        self.last.lock().good.clone()
    }

    pub fn last_failure(&self) -> Option<Failure> {
        self.last.lock().failure.clone()
    }

    /// Whether the newest attempt failed.
    pub fn failing(&self) -> bool {
        let last = self.last.lock();
        match (&last.failure, &last.good) {
            (Some(f), Some(g)) => f.at_ms >= g.at_ms,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// What `/_ready` shows (no paths, no error text: those are in the log).
    pub fn details(&self, now_ms: i64) -> Value {
        let good = self.last_good().map(|g| {
            json!({
                "file": g.file,
                "at": super::rfc3339(g.at_ms),
                "age_seconds": (now_ms - g.at_ms).max(0) / 1000,
                "size_bytes": g.bytes,
            })
        });
        let failure = self
            .last_failure()
            .map(|f| json!({"at": super::rfc3339(f.at_ms)}));
        json!({
            "every_seconds": self.schedule.every.as_secs(),
            "keep": self.schedule.keep,
            "last_good": good,
            "last_failure": failure,
            "failing": self.failing(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status() -> BackupStatus {
        BackupStatus::new(Schedule {
            dir: "/backups".into(),
            every: Duration::from_secs(86_400),
            keep: 14,
        })
    }

    #[test]
    fn the_last_good_backup_is_shown_with_its_age_and_size() {
        let s = status();
        assert_eq!(s.details(0)["last_good"], Value::Null);
        s.succeeded(Good {
            file: "cpis-20261202T100000Z.db".into(),
            at_ms: 1_796_205_600_000,
            bytes: 4096,
            seconds: Some(0.5),
        });
        let d = s.details(1_796_205_600_000 + 90_500);
        assert_eq!(d["last_good"]["age_seconds"], 90);
        assert_eq!(d["last_good"]["size_bytes"], 4096);
        assert_eq!(d["last_good"]["at"], "2026-12-02T10:00:00Z");
        assert_eq!(d["every_seconds"], 86_400);
        assert_eq!(d["failing"], false);
    }

    #[test]
    fn a_failure_after_the_last_good_one_is_failing_until_the_next_good_one() {
        let s = status();
        s.failed(Failure {
            at_ms: 10,
            error: "disk full".into(),
        });
        assert!(s.failing());
        s.succeeded(Good {
            file: "f".into(),
            at_ms: 20,
            bytes: 1,
            seconds: None,
        });
        assert!(!s.failing());
        assert!(!s.details(30).to_string().contains("disk full"));
    }
}
