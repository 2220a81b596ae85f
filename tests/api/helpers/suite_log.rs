//! The log-privacy check (issue #15, `.ci/log_privacy.sh`): with `CPIS_TEST_LOG_FILE` set, every
//! log line of the suite (the in-process servers, as JSON at `RUST_LOG`, and the `cpis serve`
//! processes the tests start) is kept in that file, and every name the tests put in a token in
//! `<file>.secrets`, for a checker to look for them (and for any token: a JWT is easy to see).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

pub fn file() -> Option<String> {
    std::env::var("CPIS_TEST_LOG_FILE")
        .ok()
        .filter(|f| !f.is_empty())
}

fn append(path: &str) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the suite's log file")
}

pub fn install(path: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(Mutex::new(append(path)))
        .try_init();
}

/// Where a `cpis serve` process started by a test writes its log.
pub fn process_log() -> Option<File> {
    file().map(|f| append(&format!("{f}.processes")))
}

pub fn names(values: &[&str]) {
    static LOCK: Mutex<()> = Mutex::new(());
    if let Some(f) = file() {
        let _guard = LOCK.lock();
        let mut out = append(&format!("{f}.secrets"));
        for value in values.iter().filter(|v| !v.is_empty()) {
            writeln!(out, "{value}").expect("write a secret");
        }
    }
}
