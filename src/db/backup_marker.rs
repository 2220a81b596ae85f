//! A backup under way, as the WAL checkpointer of every process on the database sees it: the
//! file `<database>-backup`, rewritten every second while the copy runs and removed after.
//!
//! The copy reads one snapshot from start to end. A `RESTART` checkpoint waits for every
//! reader to reach the newest snapshot, holding the writers back meanwhile (up to its 50 ms
//! each tick): against a snapshot that lasts the whole copy it would only wait, again and again,
//! and every audited lookup waits on the writers. So while the marker is fresh, the checkpointer
//! copies back what it can (`PASSIVE`) and leaves the WAL to grow until the copy ends. A marker
//! left by a copy killed outright goes stale in `FRESH`, and the checkpointer carries on as
//! before: nothing depends on it being removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a marker counts after it was last rewritten.
pub const FRESH: Duration = Duration::from_secs(10);
/// How often a running copy rewrites it.
const BEAT: Duration = Duration::from_secs(1);
/// How often the progress bar is moved.
const TICK: Duration = Duration::from_millis(200);

/// `<database>-backup`, beside the database as its `-wal` and `-shm` are.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push("-backup");
    database.with_file_name(name)
}

/// Whether a backup of `database` is under way (in any process): its marker was rewritten
/// less than `FRESH` ago.
pub fn under_way(database: &Path) -> bool {
    std::fs::metadata(path_for(database))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age < FRESH)
}

/// The marker, kept fresh by a thread that also moves the progress bar by the size of the
/// copy so far; removed when dropped.
pub struct Beacon {
    marker: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Beacon {
    /// Starts the marker for a copy of `database` being written to `copy`.
    pub fn start(database: &Path, copy: &Path, progress: indicatif::ProgressBar) -> Beacon {
        let marker = path_for(database);
        write(&marker);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (marker, copy, stop) = (marker.clone(), copy.to_path_buf(), stop.clone());
            std::thread::Builder::new()
                .name("cpis-backup-beacon".into())
                .spawn(move || {
                    let mut since_beat = Duration::ZERO;
                    while !stop.load(Ordering::Acquire) {
                        if since_beat >= BEAT {
                            write(&marker);
                            since_beat = Duration::ZERO;
                        }
                        progress.set_position(std::fs::metadata(&copy).map_or(0, |m| m.len()));
                        std::thread::sleep(TICK);
                        since_beat += TICK;
                    }
                })
                .ok()
        };
        Beacon {
            marker,
            stop,
            thread,
        }
    }
}

fn write(marker: &Path) {
    if let Err(e) = std::fs::write(marker, format!("pid={}\n", std::process::id())) {
        tracing::debug!(error = %e, "the backup marker could not be written");
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.marker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_under_way_while_its_beacon_lives() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cpis.db");
        assert_eq!(path_for(&db), dir.path().join("cpis.db-backup"));
        assert!(!under_way(&db));
        let beacon = Beacon::start(
            &db,
            &dir.path().join("copy"),
            indicatif::ProgressBar::hidden(),
        );
        assert!(under_way(&db));
        drop(beacon);
        assert!(!under_way(&db));
    }

    #[test]
    fn a_marker_left_by_a_killed_copy_goes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cpis.db");
        let marker = std::fs::File::create(path_for(&db)).unwrap();
        marker
            .set_modified(SystemTime::now() - FRESH - Duration::from_secs(1))
            .unwrap();
        assert!(!under_way(&db));
    }
}
