//! The role × action matrix of SPEC §2, in one `match`. Ownership (an LA may touch only its own
//! plans) is checked separately, once the data is known: see `ownership::LaScope`.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    SocialCare,
    HealthCare,
    Operations,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SocialCare => "social-care",
            Role::HealthCare => "health-care",
            Role::Operations => "operations",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "social-care" => Ok(Role::SocialCare),
            "health-care" => Ok(Role::HealthCare),
            "operations" => Ok(Role::Operations),
            other => Err(format!(
                "unknown role {other:?} (social-care, health-care or operations)"
            )),
        }
    }
}

/// Everything a caller can ask of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read or search EpisodeOfCare and Flag.
    ReadPlan,
    /// Create, update, delete or withdraw an EpisodeOfCare.
    WritePlan,
    /// Read or search Organization.
    ReadOrganization,
    /// Create or update any Organization (an LA).
    WriteOrganization,
    /// Update the telecom of the caller's own LA.
    UpdateOwnOrganizationTelecom,
    /// `$validate` a resource without writing it.
    Validate,
    /// Search the access history (AuditEvent) of a child (an LA: only its own children).
    ReadAccessHistory,
    /// Read any single AuditEvent by id (an LA: only those of its own children).
    ReadAuditEvent,
    /// Create, update or delete the caller's own LA's Subscriptions.
    ManageSubscription,
    /// Read or search Subscriptions (an LA: only its own).
    ReadSubscription,
    /// Scrape the server's operational metrics (`GET /metrics`).
    ReadMetrics,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::ReadPlan,
        Action::WritePlan,
        Action::ReadOrganization,
        Action::WriteOrganization,
        Action::UpdateOwnOrganizationTelecom,
        Action::Validate,
        Action::ReadAccessHistory,
        Action::ReadAuditEvent,
        Action::ManageSubscription,
        Action::ReadSubscription,
        Action::ReadMetrics,
    ];
}

/// Whether `role` may perform `action` at all (before ownership is considered).
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match (role, action) {
        (SocialCare, ReadPlan | WritePlan | ReadOrganization) => true,
        (SocialCare, UpdateOwnOrganizationTelecom | Validate) => true,
        (SocialCare, ReadAccessHistory | ReadAuditEvent) => true,
        (SocialCare, ManageSubscription | ReadSubscription) => true,
        (SocialCare, WriteOrganization | ReadMetrics) => false,
        (HealthCare, ReadPlan | ReadOrganization | ReadAccessHistory) => true,
        (HealthCare, WritePlan | WriteOrganization | UpdateOwnOrganizationTelecom | Validate) => {
            false
        }
        (HealthCare, ReadAuditEvent | ManageSubscription | ReadSubscription) => false,
        (HealthCare, ReadMetrics) => false,
        (Operations, ReadPlan | ReadOrganization | WriteOrganization | Validate) => true,
        (Operations, UpdateOwnOrganizationTelecom) => true,
        (Operations, ReadAccessHistory | ReadAuditEvent | ReadSubscription) => true,
        (Operations, ReadMetrics) => true,
        (Operations, WritePlan | ManageSubscription) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Role::*;

    /// SPEC §2, row by row: (role, action, allowed).
    const MATRIX: &[(Role, Action, bool)] = &[
        (SocialCare, ReadPlan, true),
        (SocialCare, WritePlan, true),
        (SocialCare, ReadOrganization, true),
        (SocialCare, WriteOrganization, false),
        (SocialCare, UpdateOwnOrganizationTelecom, true),
        (SocialCare, Validate, true),
        (SocialCare, ReadAccessHistory, true),
        (SocialCare, ReadAuditEvent, true),
        (SocialCare, ManageSubscription, true),
        (SocialCare, ReadSubscription, true),
        (SocialCare, ReadMetrics, false),
        (HealthCare, ReadPlan, true),
        (HealthCare, WritePlan, false),
        (HealthCare, ReadOrganization, true),
        (HealthCare, WriteOrganization, false),
        (HealthCare, UpdateOwnOrganizationTelecom, false),
        (HealthCare, Validate, false),
        (HealthCare, ReadAccessHistory, true),
        (HealthCare, ReadAuditEvent, false),
        (HealthCare, ManageSubscription, false),
        (HealthCare, ReadSubscription, false),
        (HealthCare, ReadMetrics, false),
        (Operations, ReadPlan, true),
        (Operations, WritePlan, false),
        (Operations, ReadOrganization, true),
        (Operations, WriteOrganization, true),
        (Operations, UpdateOwnOrganizationTelecom, true),
        (Operations, Validate, true),
        (Operations, ReadAccessHistory, true),
        (Operations, ReadAuditEvent, true),
        (Operations, ManageSubscription, false),
        (Operations, ReadSubscription, true),
        (Operations, ReadMetrics, true),
    ];

    #[test]
    fn policy_matches_spec_section_2() {
        for &(role, action, allowed) in MATRIX {
            assert_eq!(allows(role, action), allowed, "{role:?} {action:?}");
        }
        assert_eq!(MATRIX.len(), 3 * Action::ALL.len(), "every pair is listed");
    }

    #[test]
    fn roles_parse_from_their_claim_values() {
        for role in [SocialCare, HealthCare, Operations] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
