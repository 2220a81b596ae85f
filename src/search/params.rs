//! The search parameters each searched type supports (SPEC §4). One table for every type: the
//! parsers accept exactly these (`find`), and the CapabilityStatement lists exactly these.

use crate::fhir::index::Index;
use crate::fhir::ResourceType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `system|value` or `value` against a token index entry.
    Token,
    /// A reference searched by the target's identifier (`patient:identifier`).
    ReferenceIdentifier,
    /// Date prefixes (`eq`, `ge`, …) against a period index entry.
    Date,
    /// Case-insensitive starts-with.
    String,
    /// `Flag.status`, computed for today.
    FlagStatus,
    /// `_lastUpdated`, with date prefixes against `meta.lastUpdated`.
    LastUpdated,
    /// `_id`: the logical ids (comma = OR).
    Id,
}

impl ParamKind {
    /// The FHIR search parameter type, for the CapabilityStatement.
    pub fn fhir_type(self) -> &'static str {
        match self {
            ParamKind::Token | ParamKind::FlagStatus | ParamKind::Id => "token",
            ParamKind::ReferenceIdentifier => "reference",
            ParamKind::Date | ParamKind::LastUpdated => "date",
            ParamKind::String => "string",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    /// The name as the client writes it, modifier included (`patient:identifier`).
    pub name: &'static str,
    pub kind: ParamKind,
    /// The index entry it searches (`search_tokens.param` / `search_dates.param`).
    pub index: Index,
    pub documentation: &'static str,
}

const fn p(
    name: &'static str,
    kind: ParamKind,
    index: Index,
    documentation: &'static str,
) -> ParamDef {
    ParamDef {
        name,
        kind,
        index,
        documentation,
    }
}

const FLAG: &[ParamDef] = &[
    p("patient:identifier", ParamKind::ReferenceIdentifier, Index::Patient, "The child's (or, for an unborn child plan, the mother's) NHS number: https://fhir.nhs.uk/Id/nhs-number|{nhs}"),
    p("subject:identifier", ParamKind::ReferenceIdentifier, Index::Patient, "Alias of patient:identifier"),
    p("status", ParamKind::FlagStatus, Index::StoredStatus, "active | inactive | entered-in-error, as of today"),
    LAST_UPDATED,
    ID,
];

const EPISODE_OF_CARE: &[ParamDef] = &[
    p(
        "patient:identifier",
        ParamKind::ReferenceIdentifier,
        Index::Patient,
        "The NHS number the plan is held against",
    ),
    p(
        "identifier",
        ParamKind::Token,
        Index::Identifier,
        "The LA's plan reference: {system}|{value}",
    ),
    p(
        "status",
        ParamKind::Token,
        Index::Status,
        "active | finished | cancelled | entered-in-error",
    ),
    p(
        "type",
        ParamKind::Token,
        Index::Type,
        "Plan type (SNOMED CT code)",
    ),
    p(
        "date",
        ParamKind::Date,
        Index::Date,
        "The plan's period, with prefixes eq, ne, gt, ge, lt, le, sa, eb",
    ),
    p(
        "organization:identifier",
        ParamKind::ReferenceIdentifier,
        Index::Organization,
        "The managing LA's ODS code",
    ),
    LAST_UPDATED,
    ID,
];

const ORGANIZATION: &[ParamDef] = &[
    p(
        "identifier",
        ParamKind::Token,
        Index::Identifier,
        "ODS code: https://fhir.nhs.uk/Id/ods-organization-code|{ods}",
    ),
    p(
        "name",
        ParamKind::String,
        Index::Name,
        "Name, case-insensitive, from the start",
    ),
    LAST_UPDATED,
    ID,
];

/// The access history (`search::audit` parses it).
const AUDIT_EVENT: &[ParamDef] = &[
    p(
        "patient:identifier",
        ParamKind::ReferenceIdentifier,
        Index::Patient,
        "The child's NHS number: https://fhir.nhs.uk/Id/nhs-number|{nhs}",
    ),
    p(
        "subject:identifier",
        ParamKind::ReferenceIdentifier,
        Index::Patient,
        "Alias of patient:identifier",
    ),
    p(
        "date",
        ParamKind::Date,
        Index::Recorded,
        "When the access was recorded, with prefixes",
    ),
    p(
        "attendance-pattern",
        ParamKind::Token,
        Index::PatternReached,
        "true: only the accesses that first brought a child to a repeated-attendance pattern (unscheduled attendances at CPIS_ATTENDANCE_SETTINGS settings within CPIS_ATTENDANCE_WINDOW_DAYS days); false: the others. social-care (its own children) and operations",
    ),
    p(
        "agent-identifier",
        ParamKind::Token,
        Index::AgentSub,
        "The person who made the access: their SDS user id (https://fhir.nhs.uk/Id/sds-user-id|{id}). The User Access report: governance (with date=ge and date=le at most 31 days apart) and operations",
    ),
    p(
        "agent-organization",
        ParamKind::Token,
        Index::AgentOrg,
        "The organisation the access was made from: its ODS code (https://fhir.nhs.uk/Id/ods-organization-code|{code}). The User Access report by organisation: governance (with date=ge and date=le at most 31 days apart) and operations",
    ),
    p(
        "_lastUpdated",
        ParamKind::LastUpdated,
        Index::Recorded,
        "When the access was recorded (= recorded), with prefixes. Commit order is recorded order, so an LA that always pulls with gt the newest meta.lastUpdated it has received (all pages) misses no access",
    ),
    ID,
];

/// An LA's Subscriptions (`api::subscription` parses it).
const SUBSCRIPTION: &[ParamDef] = &[
    p(
        "status",
        ParamKind::Token,
        Index::Status,
        "requested | active | error | off",
    ),
    LAST_UPDATED,
    ID,
];

/// The upload reports (`api::upload` parses it).
const BUNDLE: &[ParamDef] = &[
    p("type", ParamKind::Token, Index::Type, "batch-response"),
    p(
        "_lastUpdated",
        ParamKind::LastUpdated,
        Index::Created,
        "When the upload was made, with prefixes",
    ),
    ID,
];

/// `_lastUpdated` of the stored types.
const LAST_UPDATED: ParamDef = p(
    "_lastUpdated",
    ParamKind::LastUpdated,
    Index::LastUpdated,
    "When the resource last changed, with prefixes",
);

/// `_id` of the stored types.
const ID: ParamDef = p(
    "_id",
    ParamKind::Id,
    Index::Id,
    "The resource's logical id; several comma-separated",
);

/// Every type the server searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Searched {
    Stored(ResourceType),
    AuditEvent,
    Subscription,
    /// The upload reports.
    Bundle,
}

impl Searched {
    pub const ALL: [Searched; 6] = [
        Searched::Stored(ResourceType::Organization),
        Searched::Stored(ResourceType::EpisodeOfCare),
        Searched::Stored(ResourceType::Flag),
        Searched::AuditEvent,
        Searched::Subscription,
        Searched::Bundle,
    ];

    /// The searched type named `name` (a path segment), if the server searches it.
    pub fn named(name: &str) -> Option<Searched> {
        Searched::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Searched::Stored(ty) => ty.as_str(),
            Searched::AuditEvent => "AuditEvent",
            Searched::Subscription => "Subscription",
            Searched::Bundle => "Bundle",
        }
    }
}

/// The search parameters of a type.
pub fn search_params(searched: Searched) -> &'static [ParamDef] {
    match searched {
        Searched::Stored(ResourceType::Flag) => FLAG,
        Searched::Stored(ResourceType::EpisodeOfCare) => EPISODE_OF_CARE,
        Searched::Stored(ResourceType::Organization) => ORGANIZATION,
        Searched::AuditEvent => AUDIT_EVENT,
        Searched::Subscription => SUBSCRIPTION,
        Searched::Bundle => BUNDLE,
    }
}

/// The search parameters of a stored type.
pub fn params_for(ty: ResourceType) -> &'static [ParamDef] {
    search_params(Searched::Stored(ty))
}

/// The definition of parameter `name` of a type, if the type has it.
pub fn find(searched: Searched, name: &str) -> Option<&'static ParamDef> {
    search_params(searched).iter().find(|d| d.name == name)
}

/// `_include` values: (value, target type, the element holding the reference).
pub fn includes_for(ty: ResourceType) -> &'static [(&'static str, ResourceType)] {
    match ty {
        ResourceType::Flag => &[("Flag:author", ResourceType::Organization)],
        ResourceType::EpisodeOfCare => {
            &[("EpisodeOfCare:organization", ResourceType::Organization)]
        }
        ResourceType::Organization => &[],
    }
}

/// Result parameters accepted on every search (besides `_include`): paging, `_sort`, and
/// those that shape the answer (`fhir::subset`).
pub const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_format",
    "_offset",
    "_sort",
    "_summary",
    "_elements",
    "_total",
    "_totalMethod",
    "_pretty",
];

/// What a search can be sorted by (`_sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `meta.lastUpdated` (for AuditEvent, when the access was recorded).
    LastUpdated,
    /// The `date` parameter's element: a plan's period (its start), an access's `recorded`.
    Date,
}

/// The `_sort` keys of a type (each also in its `-` form, descending).
pub fn sort_keys(searched: Searched) -> &'static [(&'static str, SortKey)] {
    match searched {
        Searched::Stored(ResourceType::EpisodeOfCare) | Searched::AuditEvent => &[
            ("_lastUpdated", SortKey::LastUpdated),
            ("date", SortKey::Date),
        ],
        _ => &[("_lastUpdated", SortKey::LastUpdated)],
    }
}

/// Whether a search of `searched` takes a parameter named `name` (its value may still be
/// refused): one of its filters, `_include` (on the stored types), or a result parameter.
pub fn takes(searched: Searched, name: &str) -> bool {
    find(searched, name).is_some()
        || RESULT_PARAMS.contains(&name)
        || (name == "_include" && matches!(searched, Searched::Stored(_)))
}

/// Default and maximum page sizes (SPEC §4).
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 500;

/// A search of NHS England's views (`views`): their parameters are the guides', not the native
/// API's, and are kept here with the native ones. A view's parser takes exactly these and its
/// CapabilityStatement lists exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewSearch {
    /// The CP-IS FHIR API's `CareTeam?patient=…`.
    CareTeam,
    /// The CP-IS FHIR API's `AuditEvent?patient=…`: the access history, PractitionerRoles
    /// always included.
    AuditEvent,
    /// The Patient Flag API's `Flag?patient=…` (also `PatientFlag`).
    Flag,
}

/// What a view search parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewParamKind {
    /// The child's NHS number: required, once, one value (`Patient/N` too where `reference`).
    Patient { reference: bool },
    /// A token matched against the codings every view resource has.
    Token,
    /// An `_include` form (listed as `searchInclude`, not as a parameter).
    Include,
}

/// One parameter of a view search.
#[derive(Debug, Clone, Copy)]
pub struct ViewParam {
    /// The name the CapabilityStatement lists.
    pub name: &'static str,
    /// Every name the guide's clients write for it, which the parser takes; an error about a
    /// missing value names the first.
    pub names: &'static [&'static str],
    pub kind: ViewParamKind,
    /// The guide's SearchParameter, where it has one.
    pub definition: Option<&'static str>,
    pub documentation: Option<&'static str>,
    /// For an include: the values it takes.
    pub values: &'static [&'static str],
}

const fn view_param(name: &'static [&'static str; 1], kind: ViewParamKind) -> ViewParam {
    ViewParam {
        name: name[0],
        names: name,
        kind,
        definition: None,
        documentation: None,
        values: &[],
    }
}

/// The CP-IS FHIR API's `_include` forms for the accesses' PractitionerRoles (always
/// included, whichever is asked).
pub const CPIS_AUDIT_EVENT_INCLUDES: &[&str] = &[
    "AuditEvent:agent",
    "AuditEvent:agent:PractitionerRole",
    "AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED",
    "*",
];

const CPIS_CARE_TEAM: &[ViewParam] = &[ViewParam {
    names: &["patient:identifier", "patient"],
    documentation: Some("NHS number: https://fhir.nhs.uk/Id/nhs-number|N or N; also written patient:identifier. Required; one value."),
    ..view_param(&["patient"], ViewParamKind::Patient { reference: false })
}];

const CPIS_AUDIT_EVENT: &[ViewParam] = &[
    ViewParam {
        names: &["patient:identifier", "patient"],
        documentation: Some("As CareTeam. Returns the 25 most recent unscheduled accesses; PractitionerRole is always included."),
        ..view_param(&["patient"], ViewParamKind::Patient { reference: false })
    },
    ViewParam {
        values: CPIS_AUDIT_EVENT_INCLUDES,
        ..view_param(&["_include"], ViewParamKind::Include)
    },
];

const PATIENT_FLAG: &[ViewParam] = &[
    ViewParam {
        names: &["patient", "patient:identifier", "subject:identifier"],
        documentation: Some(
            "N, https://fhir.nhs.uk/Id/nhs-number|N or Patient/N. Required; one value.",
        ),
        ..view_param(&["patient"], ViewParamKind::Patient { reference: true })
    },
    ViewParam {
        definition: Some("https://fhir.nhs.uk/England/SearchParameter/England-FlagCode"),
        ..view_param(&["code"], ViewParamKind::Token)
    },
    ViewParam {
        definition: Some("https://fhir.nhs.uk/England/SearchParameter/England-FlagCategory"),
        ..view_param(&["category"], ViewParamKind::Token)
    },
    ViewParam {
        values: &["Flag:detail"],
        ..view_param(&["_include"], ViewParamKind::Include)
    },
    ViewParam {
        values: &["CarePlan:care-team"],
        ..view_param(&["_include:iterate"], ViewParamKind::Include)
    },
];

/// The parameters of a view search, the NHS number first.
pub fn view_params(search: ViewSearch) -> &'static [ViewParam] {
    match search {
        ViewSearch::CareTeam => CPIS_CARE_TEAM,
        ViewSearch::AuditEvent => CPIS_AUDIT_EVENT,
        ViewSearch::Flag => PATIENT_FLAG,
    }
}
