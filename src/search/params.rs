//! The search parameters each resource type supports (SPEC §4). One table: the parser accepts
//! exactly these, and the CapabilityStatement lists exactly these.

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
}

impl ParamKind {
    /// The FHIR search parameter type, for the CapabilityStatement.
    pub fn fhir_type(self) -> &'static str {
        match self {
            ParamKind::Token | ParamKind::ReferenceIdentifier | ParamKind::FlagStatus => "token",
            ParamKind::Date => "date",
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
    pub index: &'static str,
    pub documentation: &'static str,
}

const fn p(
    name: &'static str,
    kind: ParamKind,
    index: &'static str,
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
    p("patient:identifier", ParamKind::ReferenceIdentifier, "patient", "The child's (or, for an unborn child plan, the mother's) NHS number: https://fhir.nhs.uk/Id/nhs-number|{nhs}"),
    p("subject:identifier", ParamKind::ReferenceIdentifier, "patient", "Alias of patient:identifier"),
    p("status", ParamKind::FlagStatus, "stored-status", "active | inactive | entered-in-error, as of today"),
];

const EPISODE_OF_CARE: &[ParamDef] = &[
    p(
        "patient:identifier",
        ParamKind::ReferenceIdentifier,
        "patient",
        "The NHS number the plan is held against",
    ),
    p(
        "identifier",
        ParamKind::Token,
        "identifier",
        "The LA's plan reference: {system}|{value}",
    ),
    p(
        "status",
        ParamKind::Token,
        "status",
        "active | finished | cancelled | entered-in-error",
    ),
    p(
        "type",
        ParamKind::Token,
        "type",
        "Plan type (SNOMED CT code)",
    ),
    p(
        "date",
        ParamKind::Date,
        "date",
        "The plan's period, with prefixes eq, ne, gt, ge, lt, le, sa, eb",
    ),
    p(
        "organization:identifier",
        ParamKind::ReferenceIdentifier,
        "organization",
        "The managing LA's ODS code",
    ),
];

const ORGANIZATION: &[ParamDef] = &[
    p(
        "identifier",
        ParamKind::Token,
        "identifier",
        "ODS code: https://fhir.nhs.uk/Id/ods-organization-code|{ods}",
    ),
    p(
        "name",
        ParamKind::String,
        "name",
        "Name, case-insensitive, from the start",
    ),
];

/// `_lastUpdated`, supported on every type.
pub const LAST_UPDATED: ParamDef = p(
    "_lastUpdated",
    ParamKind::Date,
    "_lastUpdated",
    "When the resource last changed, with prefixes",
);

pub fn params_for(ty: ResourceType) -> &'static [ParamDef] {
    match ty {
        ResourceType::Flag => FLAG,
        ResourceType::EpisodeOfCare => EPISODE_OF_CARE,
        ResourceType::Organization => ORGANIZATION,
    }
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

/// Result parameters accepted on every search (besides `_include`).
pub const RESULT_PARAMS: &[&str] = &["_count", "_format", "_offset"];

/// Default and maximum page sizes (SPEC §4).
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 500;
