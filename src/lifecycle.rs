//! Where the process is in its life, for the readiness probe (`GET /_ready`): starting
//! (migrating), ready, or stopping (draining after SIGTERM/SIGINT). `/_health` stays the
//! liveness probe.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Ready,
    Stopping,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
        }
    }
}

/// The phase, shared by the server and whoever stops it.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<AtomicU8>);

impl Default for Readiness {
    fn default() -> Readiness {
        Readiness(Arc::new(AtomicU8::new(0)))
    }
}

impl Readiness {
    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::Stopping,
        }
    }

    pub fn set(&self, phase: Phase) {
        let value = match phase {
            Phase::Starting => 0,
            Phase::Ready => 1,
            Phase::Stopping => 2,
        };
        self.0.store(value, Ordering::Release);
    }
}
