//! `Subscription.status` and how a delivery attempt moves it: a FHIR value the service stores,
//! the audit consults (who is notified) and the dispatcher updates.

/// Consecutive failed deliveries after which a Subscription shows `status: error`.
pub const FAILURES_BEFORE_ERROR: i64 = 5;

/// `Subscription.status` (FHIR R4 subscription-status): `requested` as clients ask, `active`
/// once the server accepts it, `error` after repeated failed deliveries, `off` when stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Requested,
    Active,
    Error,
    Off,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 4] = [
        SubscriptionStatus::Requested,
        SubscriptionStatus::Active,
        SubscriptionStatus::Error,
        SubscriptionStatus::Off,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Requested => "requested",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Error => "error",
            SubscriptionStatus::Off => "off",
        }
    }

    /// A stored or requested status; anything unknown is taken as `active` (the profile admits
    /// only the four codes, so a stored row always holds one of them).
    pub fn parse(code: &str) -> SubscriptionStatus {
        SubscriptionStatus::from_code(code).unwrap_or(SubscriptionStatus::Active)
    }

    pub fn from_code(code: &str) -> Option<SubscriptionStatus> {
        SubscriptionStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == code)
    }

    /// Whether notifications are sent: in every state but `off` (one in `error` keeps being
    /// tried, so that it can return to `active`).
    pub fn delivers(self) -> bool {
        self != SubscriptionStatus::Off
    }

    /// After a delivery attempt (`failures`: consecutive failed ones, this one included).
    pub fn after_delivery(self, failed: bool, failures: i64) -> SubscriptionStatus {
        match (self, failed) {
            (SubscriptionStatus::Off, _) => SubscriptionStatus::Off,
            (_, false) => SubscriptionStatus::Active,
            (_, true) if failures >= FAILURES_BEFORE_ERROR => SubscriptionStatus::Error,
            (_, true) => SubscriptionStatus::Active,
        }
    }
}
