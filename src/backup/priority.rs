//! A backup gives way to the requests: the thread that copies and checks runs at the lowest CPU
//! priority (nice 19) and the lowest best-effort I/O priority, so that lookups keep their
//! latency while it runs (`benches/backup_drill.sh`: on two cores under a full lookup load, the
//! lookups' p99 during back-to-back backups was 2.07x quiet at normal priority). It asks
//! `renice` and `ionice` (util-linux) to lower the thread's own id, without unsafe code; where
//! they are missing, the copy runs at the priority it has.

/// Lowers the calling thread's CPU and I/O priority, for as long as the thread lives (the
/// scheduler's thread does nothing else; the command's ends with it). Threads it starts
/// afterwards inherit it.
pub fn give_way() {
    let Some(tid) = thread_id() else {
        return;
    };
    let lowerings: [(&str, &[&str]); 2] = [
        ("renice", &["-n", "19", "-p"]),
        ("ionice", &["-c", "2", "-n", "7", "-p"]),
    ];
    for (program, args) in lowerings {
        let done = std::process::Command::new(program)
            .args(args)
            .arg(&tid)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if !done.is_ok_and(|s| s.success()) {
            tracing::debug!(program, "the backup runs at the priority it has");
        }
    }
}

/// The calling thread's id on Linux (`/proc/thread-self` links to `PID/task/TID`).
fn thread_id() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    let tid = link.file_name()?.to_string_lossy().into_owned();
    tid.chars().all(|c| c.is_ascii_digit()).then_some(tid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's nice value (`/proc/thread-self/stat`, field 19).
    fn own_nice() -> Option<i64> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let after_name = stat.rsplit_once(')')?.1;
        after_name.split_whitespace().nth(16)?.parse().ok()
    }

    #[test]
    fn only_the_thread_that_gives_way_runs_at_nice_19() {
        let before = own_nice();
        let lowered = std::thread::spawn(|| {
            give_way();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(own_nice(), before, "the other threads keep their priority");
        if cfg!(target_os = "linux") {
            assert_eq!(lowered, Some(19), "renice (util-linux) lowered the thread");
        }
    }
}
