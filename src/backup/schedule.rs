//! Scheduled backups inside the server (SQLite): `CPIS_BACKUP_DIR`, `CPIS_BACKUP_EVERY`,
//! `CPIS_BACKUP_KEEP`.
//!
//! A backup is due `every` after the newest good one in the directory (at start: the newest
//! sealed file there, so a restart neither skips nor repeats one), judged on the server's
//! clock. Each is a dated file, `cpis-YYYYMMDDTHHMMSSZ.db` (UTC), taken as `cpis backup` takes
//! one; then all but the newest `keep` are removed. A failure (a full disk, a directory that
//! cannot be written) is logged as an error, counted, shown in `/_ready`, and tried again after
//! `RETRY` (or `every`, if sooner); the server serves on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::NaiveDateTime;

use super::status::{BackupStatus, Failure, Good};
use crate::clock::Clock;
use crate::metrics::{LastBackup, Metrics};

/// Where, how often and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub dir: PathBuf,
    pub every: Duration,
    pub keep: usize,
}

/// How soon a failed backup is tried again (at most).
const RETRY: Duration = Duration::from_secs(10 * 60);
/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_secs(1);
/// A partial copy not written to for this long belongs to a copy that was killed.
const STALE_PARTIAL: Duration = Duration::from_secs(10 * 60);

const PREFIX: &str = "cpis-";
const SUFFIX: &str = "Z.db";
const STAMP: &str = "%Y%m%dT%H%M%S";

/// `CPIS_BACKUP_EVERY`: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `30m`, `24h`, `7d`).
pub fn parse_every(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit, as in 90s, 30m, 24h or 7d"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: a whole number and a unit, as in 24h"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("{text:?}: the unit is s, m, h or d (90s, 30m, 24h, 7d)"))?;
    if seconds == 0 {
        return Err(format!("{text:?}: must be at least 1s"));
    }
    Ok(Duration::from_secs(seconds))
}

/// The file a backup taken at `now_ms` is written to: `cpis-20261202T012432Z.db`.
pub fn file_name(now_ms: i64) -> String {
    let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format(STAMP);
    format!("{PREFIX}{stamp}{SUFFIX}")
}

/// When the backup named `name` was taken (epoch ms), if it is one of ours.
pub fn taken_at(name: &str) -> Option<i64> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    NaiveDateTime::parse_from_str(stamp, STAMP)
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// The dated backups in `dir`, newest first.
pub fn backups_in(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            taken_at(&name.to_string_lossy()).map(|at| (at, entry.path()))
        })
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found
}

/// The newest finished (sealed) backup in `dir`.
pub fn newest_good(dir: &Path) -> Option<Good> {
    backups_in(dir)
        .into_iter()
        .find(|(_, path)| super::seal::file_is_sealed(path))
        .map(|(at_ms, path)| Good {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            at_ms,
            bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
            seconds: None,
        })
}

/// Removes all but the newest `keep` dated backups of `dir`; returns how many went.
pub fn prune(dir: &Path, keep: usize) -> usize {
    let mut removed = 0;
    for (_, path) in backups_in(dir).into_iter().skip(keep) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(error = %e, file = %path.display(), "an old backup could not be removed")
            }
        }
    }
    removed
}

/// Removes partial copies in `dir` left by a copy that was killed (not written to lately).
fn remove_stale_partials(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > STALE_PARTIAL);
        if name.starts_with(&format!(".{PREFIX}")) && name.contains(".partial-") && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// One scheduled backup of `database` at `now_ms`, then the pruning.
pub fn run_once(database: &Path, schedule: &Schedule, now_ms: i64) -> Result<Good, String> {
    create_dir(&schedule.dir)?;
    let to = schedule.dir.join(file_name(now_ms));
    let taken = super::take::take(database, &to, &indicatif::ProgressBar::hidden())?;
    let removed = prune(&schedule.dir, schedule.keep);
    tracing::info!(
        backup.file = %taken.path.display(),
        backup.bytes = taken.bytes,
        backup.seconds = taken.seconds,
        backup.plans = taken.inspection.counts.plans,
        backup.accesses = taken.inspection.counts.accesses,
        backup.removed = removed,
        "backup taken"
    );
    Ok(Good {
        file: file_name(now_ms),
        at_ms: now_ms,
        bytes: taken.bytes,
        seconds: Some(taken.seconds),
    })
}

fn create_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("cannot create the backup directory {}: {e}", dir.display()))
}

/// Starts the scheduler for the SQLite database `database` (nothing on PostgreSQL), until
/// `alive` is gone, with its metrics (`/metrics`). What it finds in the directory at start is
/// the last good backup.
pub fn start(
    database: PathBuf,
    schedule: Schedule,
    clock: Clock,
    alive: Weak<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
) -> std::io::Result<Arc<BackupStatus>> {
    let status = Arc::new(BackupStatus::new(schedule.clone()));
    if let Some(good) = newest_good(&schedule.dir) {
        status.succeeded(good);
    }
    // Registered before the first attempt, which follows at once: one made before would go
    // uncounted.
    let read = status.clone();
    metrics
        .enable_backups(move || {
            read.last_good().map(|good| LastBackup {
                at_ms: good.at_ms,
                bytes: good.bytes,
                seconds: good.seconds,
            })
        })
        .map_err(std::io::Error::other)?;
    let shared = status.clone();
    std::thread::Builder::new()
        .name("cpis-backup".into())
        .spawn(move || {
            remove_stale_partials(&schedule.dir);
            let every = i64::try_from(schedule.every.as_millis()).unwrap_or(i64::MAX);
            let retry = i64::try_from(schedule.every.min(RETRY).as_millis()).unwrap_or(i64::MAX);
            let mut due = shared
                .last_good()
                .map_or(i64::MIN, |g| g.at_ms.saturating_add(every));
            while alive.upgrade().is_some() {
                let now = clock.now_ms();
                if now >= due {
                    match run_once(&database, &schedule, now) {
                        Ok(good) => {
                            shared.succeeded(good);
                            metrics.observe_backup(true);
                            due = now.saturating_add(every);
                        }
                        Err(error) => {
                            tracing::error!(
                                error = %error,
                                backup.dir = %schedule.dir.display(),
                                "BACKUP FAILED: no backup was taken; the server serves on, and tries again in {} s",
                                retry / 1000
                            );
                            shared.failed(Failure { at_ms: now, error });
                            metrics.observe_backup(false);
                            due = now.saturating_add(retry);
                        }
                    }
                }
                std::thread::sleep(TICK);
            }
        })?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_is_a_number_and_a_unit() {
        assert_eq!(parse_every("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_every("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_every("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_every(" 7d "), Ok(Duration::from_secs(604_800)));
        for bad in [
            "",
            "24",
            "h",
            "0s",
            "1.5h",
            "10x",
            "-1h",
            "99999999999999999999d",
        ] {
            assert!(parse_every(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_backup_is_named_by_when_it_was_taken() {
        let at = 1_796_205_600_000;
        assert_eq!(file_name(at), "cpis-20261202T100000Z.db");
        assert_eq!(taken_at(&file_name(at)), Some(at));
        assert_eq!(taken_at("cpis.db"), None);
        assert_eq!(taken_at(".cpis-20261202T100000Z.db.partial-7"), None);
    }

    #[test]
    fn pruning_keeps_the_newest_and_touches_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000;
        for d in 0..5 {
            std::fs::write(
                dir.path().join(file_name(1_796_205_600_000 + d * day)),
                b"x",
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"keep").unwrap();
        assert_eq!(prune(dir.path(), 2), 3);
        let left: Vec<i64> = backups_in(dir.path()).iter().map(|(at, _)| *at).collect();
        assert_eq!(
            left,
            vec![1_796_205_600_000 + 4 * day, 1_796_205_600_000 + 3 * day]
        );
        assert!(dir.path().join("notes.txt").exists());
    }
}
