//! Every rule that depends on a caller's role (SPEC §2), here and nowhere else: the role ×
//! action matrix, and each question the rest of the server asks of a role (whose records it
//! reaches, whether it sees withdrawn plans, how its reads are recorded, what its searches must
//! name, which access history it is shown, which claims its token needs). Each answer is an
//! exhaustive `match`, so a new role is one variant and the edits the compiler asks for here;
//! other modules match on the answers, never on the role (`tests/role_rules.rs` checks).

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    SocialCare,
    HealthCare,
    Operations,
    /// Privacy Officers and Caldicott Guardians: the access reports, nothing else.
    Governance,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SocialCare => "social-care",
            Role::HealthCare => "health-care",
            Role::Operations => "operations",
            Role::Governance => "governance",
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
            "governance" => Ok(Role::Governance),
            other => Err(format!(
                "unknown role {other:?} (social-care, health-care, operations or governance)"
            )),
        }
    }
}

/// Whose LA-held records (plans, flags, Subscriptions, upload reports, access history) a role
/// reaches, as far as its actions allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Its own LA's only (the token's `org`).
    OwnLa,
    /// Any LA's.
    EveryLa,
}

/// How a role's reads of plans and flags are recorded (SPEC §3 AuditEvent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Not an access: an LA reading its own plans.
    NotAnAccess,
    /// Recorded for governance only: never shown in a history, notified or counted.
    Governance,
    /// A clinician's access: shown, notified and counted when unscheduled.
    Clinical,
}

/// What a role's searches of plans and flags must name, and what they never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanSearch {
    /// One NHS number at a time (the register cannot be browsed), withdrawn plans hidden.
    OneChildWithoutWithdrawn,
    /// Its own LA's plans only.
    OwnLa,
    /// The whole register.
    Register,
}

/// Which access history (`AuditEvent?`) a role is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryView {
    /// A clinician: one child's 25 most recent shown accesses; the search is itself an access.
    Clinician,
    /// An LA: its own children's accesses shown to it (history, pull, attendance marks).
    OwnLa,
    /// Every access, scheduled and collapsed ones too, never itself an access.
    Everything,
    /// The governance reports: every access to one child, or by one user or organisation,
    /// within a bounded period, governance searches left out; each search is itself recorded.
    Reports,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::SocialCare,
        Role::HealthCare,
        Role::Operations,
        Role::Governance,
    ];

    pub fn reach(self) -> Reach {
        match self {
            Role::SocialCare => Reach::OwnLa,
            Role::HealthCare | Role::Operations | Role::Governance => Reach::EveryLa,
        }
    }

    /// Whether withdrawn (entered-in-error) and deleted plans are still there for the role:
    /// for health care a withdrawn plan does not exist (404) and a deleted one is gone (410).
    pub fn sees_withdrawn_plans(self) -> bool {
        match self {
            Role::SocialCare | Role::Operations => true,
            // Governance reads no plan at all; were it ever to, it would see what care sees.
            Role::HealthCare | Role::Governance => false,
        }
    }

    pub fn recording(self) -> Recording {
        match self {
            Role::SocialCare => Recording::NotAnAccess,
            Role::HealthCare => Recording::Clinical,
            Role::Operations | Role::Governance => Recording::Governance,
        }
    }

    pub fn plan_search(self) -> PlanSearch {
        match self {
            Role::SocialCare => PlanSearch::OwnLa,
            Role::HealthCare | Role::Governance => PlanSearch::OneChildWithoutWithdrawn,
            Role::Operations => PlanSearch::Register,
        }
    }

    pub fn history_view(self) -> HistoryView {
        match self {
            Role::SocialCare => HistoryView::OwnLa,
            Role::HealthCare => HistoryView::Clinician,
            Role::Operations => HistoryView::Everything,
            Role::Governance => HistoryView::Reports,
        }
    }

    /// Whether the role's token must name its organisation (`org`): the LA, or the care setting.
    pub fn needs_org(self) -> bool {
        match self {
            Role::SocialCare | Role::HealthCare => true,
            Role::Operations | Role::Governance => false,
        }
    }

    /// Whether the role's token must name the person (`name`): a clinician's name is shown.
    pub fn needs_name(self) -> bool {
        match self {
            // A report names the officer who asked for it.
            Role::HealthCare | Role::Governance => true,
            Role::SocialCare | Role::Operations => false,
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
    /// Read and search an LA's upload reports (an LA: only its own).
    ReadUploadReport,
    /// Look a child up through NHS England's API shapes (SPEC §9): consumer APIs for clinicians.
    UseNhsViews,
    /// The access reports: every access by child, user or organisation (JSON or CSV).
    ReadAccessReports,
    /// Sign in to the clinician viewer (SPEC §10): health care only.
    UseViewer,
}

impl Action {
    pub const ALL: [Action; 15] = [
        Action::UseViewer,
        Action::ReadAccessReports,
        Action::ReadUploadReport,
        Action::UseNhsViews,
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
        (SocialCare, WriteOrganization | ReadMetrics | UseNhsViews) => false,
        (SocialCare, ReadUploadReport) => true,
        (SocialCare, ReadAccessReports | UseViewer) => false,
        (HealthCare, ReadPlan | ReadOrganization | ReadAccessHistory) => true,
        (HealthCare, WritePlan | WriteOrganization | UpdateOwnOrganizationTelecom | Validate) => {
            false
        }
        (HealthCare, ReadAuditEvent | ManageSubscription | ReadSubscription) => false,
        (HealthCare, ReadMetrics | ReadUploadReport) => false,
        (HealthCare, UseNhsViews | UseViewer) => true,
        (HealthCare, ReadAccessReports) => false,
        (Operations, ReadPlan | ReadOrganization | WriteOrganization | Validate) => true,
        (Operations, UpdateOwnOrganizationTelecom) => true,
        (Operations, ReadAccessHistory | ReadAuditEvent | ReadSubscription) => true,
        (Operations, ReadMetrics | ReadUploadReport) => true,
        (Operations, WritePlan | ManageSubscription | UseNhsViews | UseViewer) => false,
        (Operations, ReadAccessReports) => true,
        // Governance: the access history's reports, and nothing else.
        (Governance, ReadAccessHistory | ReadAccessReports) => true,
        (Governance, ReadPlan | WritePlan | ReadOrganization | WriteOrganization) => false,
        (Governance, UpdateOwnOrganizationTelecom | Validate | ReadAuditEvent) => false,
        (Governance, ManageSubscription | ReadSubscription | ReadMetrics) => false,
        (Governance, ReadUploadReport | UseNhsViews | UseViewer) => false,
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
        (SocialCare, ReadUploadReport, true),
        (SocialCare, UseNhsViews, false),
        (SocialCare, ReadAccessReports, false),
        (SocialCare, UseViewer, false),
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
        (HealthCare, ReadUploadReport, false),
        (HealthCare, UseNhsViews, true),
        (HealthCare, ReadAccessReports, false),
        (HealthCare, UseViewer, true),
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
        (Operations, ReadUploadReport, true),
        (Operations, UseNhsViews, false),
        (Operations, ReadAccessReports, true),
        (Operations, UseViewer, false),
        (Governance, ReadPlan, false),
        (Governance, WritePlan, false),
        (Governance, ReadOrganization, false),
        (Governance, WriteOrganization, false),
        (Governance, UpdateOwnOrganizationTelecom, false),
        (Governance, Validate, false),
        (Governance, ReadAccessHistory, true),
        (Governance, ReadAuditEvent, false),
        (Governance, ManageSubscription, false),
        (Governance, ReadSubscription, false),
        (Governance, ReadMetrics, false),
        (Governance, ReadUploadReport, false),
        (Governance, UseNhsViews, false),
        (Governance, ReadAccessReports, true),
        (Governance, UseViewer, false),
    ];

    #[test]
    fn policy_matches_spec_section_2() {
        for &(role, action, allowed) in MATRIX {
            assert_eq!(allows(role, action), allowed, "{role:?} {action:?}");
        }
        assert_eq!(
            MATRIX.len(),
            Role::ALL.len() * Action::ALL.len(),
            "every pair is listed"
        );
    }

    #[test]
    fn roles_parse_from_their_claim_values() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
