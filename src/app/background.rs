//! Work that may wait for the cores: run on a thread of its own at a lower OS priority, so that
//! when it and the lookups contend for the CPU, the lookups come first (issue #31: lookups
//! during an LA's daily upload). Only the work's CPU-heavy stage goes here, never one that
//! holds a write turn or a lock others wait on (a low-priority holder would make them wait
//! longer).

use crate::error::FhirError;

/// The nice value the background thread runs at (0 is normal; 19 the lowest priority).
const BACKGROUND_NICE: i32 = 10;

/// Runs `work` on a new thread at `BACKGROUND_NICE` and returns its result.
pub async fn run<T, F>(name: &str, work: F) -> Result<T, FhirError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name(format!("cpis-{name}"))
        .spawn(move || {
            // On Linux a nice value is the calling thread's. Failing to lower it costs only
            // the priority, never the work.
            if let Err(e) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
                tracing::debug!(error = %e, "background thread keeps normal priority");
            }
            let _ = done.send(span.in_scope(work));
        })
        .map_err(|e| FhirError::Unavailable(format!("no thread for background work: {e}")))?;
    result
        .await
        .map_err(|_| FhirError::Unavailable("background work stopped".into()))
}
