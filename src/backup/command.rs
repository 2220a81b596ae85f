//! `cpis backup` and `cpis restore` as the command line runs them: what they print and their
//! exit status (0 done, 1 failed or refused, 2 PostgreSQL; for `backup` also a
//! `CPIS_DATABASE_URL` that names no engine).

use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::restore::Refusal;
use super::{inspect, restore, take, Target, POSTGRES_ADVICE};

/// `cpis backup --to PATH`: the database of `CPIS_DATABASE_URL` (`database_url`), copied online
/// to `PATH` (or a file in it dated `now_ms`, when it is a directory).
pub fn backup(database_url: &str, now_ms: i64, to: &Path) -> ExitCode {
    let database = match super::target(database_url) {
        Ok(Target::Sqlite(path)) => path,
        Ok(Target::Postgres) => {
            eprintln!("cpis backup: {POSTGRES_ADVICE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cpis backup: {e}");
            return ExitCode::from(2);
        }
    };
    let to = take::destination(to, now_ms);
    match take::take(&database, &to, &progress_bar()) {
        Ok(taken) => {
            println!(
                "backup {} bytes={} seconds={:.2} {} schema={} integrity=ok sealed",
                taken.path.display(),
                taken.bytes,
                taken.seconds,
                taken.inspection.counts.summary(),
                taken.inspection.schema()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cpis backup: failed, no backup was written: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A bar of bytes copied on a terminal (standard error); nothing otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} (about)  {binary_bytes_per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `cpis restore --from PATH --to DATABASE_URL [--replace]`.
pub fn restore(from: &Path, to: &str, replace: bool) -> ExitCode {
    match restore::restore(from, to, replace) {
        Ok(restored) => {
            let known = inspect::known_versions();
            let pending = known
                .iter()
                .filter(|v| !restored.inspection.versions.contains(v))
                .count();
            println!(
                "restored {} from {}: {} schema={} integrity=ok",
                restored.path.display(),
                from.display(),
                restored.inspection.counts.summary(),
                restored.inspection.schema()
            );
            if pending > 0 {
                println!(
                    "the backup's schema is older than this cpis: the next `cpis migrate` or \
                     `cpis serve` applies {pending} migration(s)"
                );
            }
            ExitCode::SUCCESS
        }
        Err(Refusal::Postgres) => {
            eprintln!("cpis restore: {POSTGRES_ADVICE}");
            ExitCode::from(2)
        }
        Err(Refusal::Refused(reason)) => {
            eprintln!("cpis restore: refused: {reason}");
            ExitCode::FAILURE
        }
    }
}
