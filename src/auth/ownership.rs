//! Ownership (SPEC §2): a social-care caller touches only its own LA's records; health-care and
//! operations are bounded by their role's actions (`policy`) and by what each read shows them.
//! The rule lives here alone: every path asks the caller's `LaScope`.

use super::policy::Reach;
use super::Caller;
use crate::error::FhirError;

/// Whose LA-held records (plans, flags, Subscriptions, upload reports, the access history) a
/// caller's role lets it reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaScope {
    /// A local authority: its own records only.
    Own(String),
    /// Any LA's, as far as the role's actions allow.
    Every,
}

impl LaScope {
    /// Whether a record of LA `ods` is within the scope.
    pub fn covers(&self, ods: &str) -> bool {
        match self {
            LaScope::Own(own) => own.eq_ignore_ascii_case(ods),
            LaScope::Every => true,
        }
    }

    /// A record of LA `ods` may be touched, else 403.
    pub fn admit(&self, ods: &str) -> Result<(), FhirError> {
        if self.covers(ods) {
            Ok(())
        } else {
            Err(FhirError::Forbidden(
                "a local authority may only access its own records".into(),
            ))
        }
    }
}

impl Caller {
    /// The caller's scope: a social-care caller's own LA (from its token's organisation).
    pub fn la_scope(&self) -> LaScope {
        match self.role().reach() {
            Reach::OwnLa => LaScope::Own(self.org().unwrap_or_default().to_string()),
            Reach::EveryLa => LaScope::Every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_authority_covers_only_its_own_code_in_any_case() {
        let own = LaScope::Own("E09000030".into());
        assert!(own.covers("E09000030"));
        assert!(own.covers("e09000030"));
        assert!(!own.covers("E08000025"));
        assert!(matches!(
            own.admit("E08000025"),
            Err(FhirError::Forbidden(_))
        ));
        assert!(LaScope::Every.covers("E08000025"));
        assert!(LaScope::Own(String::new()).admit("E08000025").is_err());
    }
}
