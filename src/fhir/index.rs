//! What a resource is searched by: the index a search parameter reads and a stored resource
//! writes, named once (`Index`), and the entries a resource version yields (`IndexEntries`),
//! a value of the domain that `db::store` keeps in `search_tokens` and `search_dates`. A
//! parameter and the entries it reads cannot name different indexes: both say `Index::…`.

/// An index: of the stored types' search tables (`search_tokens.param`, `search_dates.param`),
/// or a column of the AuditEvent, Subscription and upload-report tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    Patient,
    Identifier,
    Status,
    /// A Flag's date-independent status (`fhir::flag::stored_status`).
    StoredStatus,
    Type,
    Organization,
    Name,
    /// An EpisodeOfCare's period (`date`).
    Date,
    /// A Flag's period (`status` as of today).
    Period,
    LastUpdated,
    Id,
    /// When an access was recorded.
    Recorded,
    PatternReached,
    AgentSub,
    AgentOrg,
    /// When an upload was made.
    Created,
}

impl Index {
    /// The name stored in the index tables (and the column for the others).
    pub const fn name(self) -> &'static str {
        match self {
            Index::Patient => "patient",
            Index::Identifier => "identifier",
            Index::Status => "status",
            Index::StoredStatus => "stored-status",
            Index::Type => "type",
            Index::Organization => "organization",
            Index::Name => "name",
            Index::Date => "date",
            Index::Period => "period",
            Index::LastUpdated => "_lastUpdated",
            Index::Id => "_id",
            Index::Recorded => "recorded",
            Index::PatternReached => "pattern_reached",
            Index::AgentSub => "agent_sub",
            Index::AgentOrg => "agent_org",
            Index::Created => "created",
        }
    }
}

/// A token index entry: `param` = `system|value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub param: Index,
    pub system: String,
    pub value: String,
}

impl TokenEntry {
    pub fn new(param: Index, system: &str, value: &str) -> Self {
        Self {
            param,
            system: system.to_string(),
            value: value.to_string(),
        }
    }
}

/// A date index entry: the half-open range `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateEntry {
    pub param: Index,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Everything a resource version contributes to the search index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexEntries {
    pub tokens: Vec<TokenEntry>,
    pub dates: Vec<DateEntry>,
}
