//! Rate limits (SPEC §10), kept in memory: sign-in attempts per user name and per client
//! address (generous enough for a ward behind one address), EPR launches per address, and
//! searches per session. Fixed one-minute windows on the server's clock.
//!
//! | What is counted                                     | Key                  | A minute |
//! |-----------------------------------------------------|----------------------|----------|
//! | the sandbox form posted                             | address              | 60       |
//! | the sandbox form posted                             | the name entered     | 10       |
//! | an OpenID Connect sign-in started (to the provider) | address              | 60       |
//! | the provider's answer (`/viewer/callback`)          | address              | 60       |
//! | an OpenID Connect sign-in completed                 | the ID token's `sub` | 10       |
//! | `POST /viewer/launch`                               | address              | 60       |
//! | a search                                            | session              | 20 (1)   |
//!
//! (1) Or `CPIS_VIEWER_SEARCHES_PER_MINUTE`.

use std::collections::HashMap;

use parking_lot::Mutex;

const WINDOW_MS: i64 = 60 * 1000;
/// Keys kept before stale windows are swept.
const SWEEP_AT: usize = 10_000;

/// Sign-in attempts a minute from one client address.
pub const SIGN_IN_PER_ADDRESS: u32 = 60;
/// Sign-in attempts a minute for one user name.
pub const SIGN_IN_PER_USER: u32 = 10;
/// The provider's answers (`/viewer/callback`) a minute from one client address.
pub const CALLBACKS_PER_ADDRESS: u32 = 60;
/// EPR launches (`POST /viewer/launch`) a minute from one client address.
pub const LAUNCHES_PER_ADDRESS: u32 = 60;
/// Searches a minute in one session, unless `CPIS_VIEWER_SEARCHES_PER_MINUTE` says otherwise.
pub const SEARCHES_PER_SESSION: u32 = 20;

/// Counts per key in the current minute.
#[derive(Debug, Default)]
pub struct Limiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl Limiter {
    /// Counts one attempt for `key` at `now_ms`; false once `limit` is passed this minute.
    pub fn allow(&self, key: &str, limit: u32, now_ms: i64) -> bool {
        let window = now_ms.div_euclid(WINDOW_MS);
        let mut windows = self.windows.lock();
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (w, _)| *w == window);
        }
        let entry = windows.entry(key.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= limit
    }
}

/// The viewer's limiters.
#[derive(Debug, Default)]
pub struct Limits {
    /// Sign-ins started or posted, per client address.
    pub sign_in_address: Limiter,
    /// Sign-ins per user: the sandbox form's name, an ID token's `sub` (`oidc:` before it).
    pub sign_in_user: Limiter,
    /// The provider's answers, per client address.
    pub callbacks: Limiter,
    /// EPR launches, per client address.
    pub launches: Limiter,
    /// Searches, per session.
    pub searches: Limiter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_may_go_up_to_its_limit_each_minute() {
        let limiter = Limiter::default();
        for _ in 0..3 {
            assert!(limiter.allow("a", 3, 1_000));
        }
        assert!(!limiter.allow("a", 3, 59_999));
        assert!(limiter.allow("b", 3, 59_999), "another key counts apart");
        assert!(
            limiter.allow("a", 3, 60_000),
            "the next minute starts again"
        );
    }
}
