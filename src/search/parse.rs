//! Strict search-parameter parsing: anything not in the table of `params` is a 400, and so is a
//! value that does not parse (an invalid NHS number above all).

use super::params::{find, includes_for, params_for, ParamDef, ParamKind, Searched, DEFAULT_COUNT};
use crate::error::FhirError;
use crate::fhir::index::Index;
use crate::fhir::nhs_number::NhsNumber;
use crate::fhir::types::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};
use crate::fhir::ResourceType;

pub use super::date::{instant_bounds, parse_date, parse_instant_date, DatePrefix};
pub use super::paging::{result_param, Paging, Sort};

/// One `system|value` alternative of a token search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    pub system: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Any of the values (comma = OR) in the token index entry `index`.
    Token {
        index: Index,
        values: Vec<TokenValue>,
    },
    /// None of the values.
    NotToken {
        index: Index,
        values: Vec<TokenValue>,
    },
    /// The period in index entry `index` against the search range `[lo, hi)`.
    Date {
        index: Index,
        prefix: DatePrefix,
        lo: i64,
        hi: i64,
    },
    /// `_lastUpdated` against `[lo, hi)`.
    LastUpdated {
        prefix: DatePrefix,
        lo: i64,
        hi: i64,
    },
    /// Case-insensitive prefix match on a string index entry.
    StartsWith { index: Index, value: String },
    /// `Flag.status` as of today: any of these.
    FlagStatus(Vec<FlagStatus>),
    /// `_id`: any of these logical ids.
    Ids(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagStatus {
    Active,
    Inactive,
    EnteredInError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub ty: ResourceType,
    pub filters: Vec<Filter>,
    /// Target types of the `_include`s asked for.
    pub includes: Vec<(&'static str, ResourceType)>,
    pub count: usize,
    pub offset: usize,
    pub sort: Option<Sort>,
    /// The NHS numbers searched for (`patient:identifier`), in order.
    pub patients: Vec<NhsNumber>,
    /// The query as parsed, for `self`/`next` links: (name, value) pairs, paging excluded.
    pub canonical: Vec<(String, String)>,
}

impl SearchRequest {
    pub fn new(ty: ResourceType) -> Self {
        SearchRequest {
            ty,
            filters: Vec::new(),
            includes: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            sort: None,
            patients: Vec::new(),
            canonical: Vec::new(),
        }
    }
}

pub(super) fn invalid(param: &str, reason: impl Into<String>) -> FhirError {
    FhirError::InvalidSearch {
        param: param.to_string(),
        reason: reason.into(),
    }
}

/// The most search parameters one search may have, besides the result parameters (`_count`,
/// `_sort`, …): each is a condition of the query, and a query of hundreds is no lookup (1,100
/// `_lastUpdated` filters were past SQLite's expression depth: a 500). The NHS views and every
/// client of the guides use fewer than ten.
pub const MAX_SEARCH_PARAMS: usize = 32;
/// The most comma-separated values (OR) of one parameter: each is bound to the query, and
/// SQLite takes at most 32,766 bound values in all.
pub const MAX_SEARCH_VALUES: usize = 100;

/// Counts a search's parameters: too many, or too many values in one, is 400 naming the
/// parameter (SPEC §5).
#[derive(Debug, Default)]
struct Limits {
    params: usize,
}

impl Limits {
    fn count(&mut self, name: &str, value: &str) -> Result<(), FhirError> {
        self.params += 1;
        if self.params > MAX_SEARCH_PARAMS {
            return Err(invalid(
                name,
                format!(
                    "a search takes at most {MAX_SEARCH_PARAMS} parameters besides _count, \
                     _offset, _sort and the other result parameters"
                ),
            ));
        }
        let values = value.split(',').count();
        if values > MAX_SEARCH_VALUES {
            return Err(invalid(
                name,
                format!(
                    "{name} takes at most {MAX_SEARCH_VALUES} comma-separated values (this one \
                     has {values})"
                ),
            ));
        }
        Ok(())
    }
}

/// Parses a raw query string for a search on `ty`.
pub fn parse(ty: ResourceType, query: &str) -> Result<SearchRequest, FhirError> {
    let mut req = SearchRequest::new(ty);
    let mut paging = Paging::default();
    let mut limits = Limits::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        if name.is_empty() {
            continue;
        }
        if let Some(def) = params_for(ty).iter().find(|d| d.name == name) {
            if value.is_empty() {
                // FHIR: a parameter with an empty value is ignored.
                continue;
            }
            limits.count(&name, &value)?;
            req.filters
                .push(parse_param(def, &name, &value, &mut req.patients)?);
            req.canonical.push((name, value));
            continue;
        }
        match name.as_str() {
            "_include" => {
                limits.count(&name, &value)?;
                let target = includes_for(ty)
                    .iter()
                    .find(|(v, _)| *v == value)
                    .ok_or_else(|| {
                        invalid("_include", format!("unsupported _include {value:?}"))
                    })?;
                if !req.includes.contains(target) {
                    req.includes.push(*target);
                }
                req.canonical.push((name, value));
            }
            _ if result_param(&name, &value, Searched::Stored(ty), &mut paging)? => {}
            _ => return Err(FhirError::UnknownParameter { param: name }),
        }
    }
    req.count = paging.count;
    req.offset = paging.offset;
    req.sort = paging.sort;
    Ok(req)
}

fn parse_param(
    def: &ParamDef,
    name: &str,
    value: &str,
    patients: &mut Vec<NhsNumber>,
) -> Result<Filter, FhirError> {
    match def.kind {
        ParamKind::LastUpdated => {
            let (prefix, lo, hi) = parse_instant_date(name, value)?;
            Ok(Filter::LastUpdated { prefix, lo, hi })
        }
        ParamKind::Id => Ok(Filter::Ids(ids_of(value))),
        ParamKind::Token => Ok(Filter::Token {
            index: def.index,
            values: parse_tokens(name, value)?,
        }),
        ParamKind::ReferenceIdentifier => {
            let values = parse_tokens(name, value)?;
            let expected_system = match def.index {
                Index::Patient => NHS_NUMBER_SYSTEM,
                _ => ODS_SYSTEM,
            };
            for v in &values {
                if v.system.as_deref().is_some_and(|s| s != expected_system) {
                    return Err(invalid(
                        name,
                        format!("{name} takes identifiers of {expected_system}"),
                    ));
                }
                if def.index == Index::Patient {
                    let nhs = NhsNumber::parse(&v.value)
                        .map_err(|e| invalid(name, format!("invalid NHS number: {e}")))?;
                    patients.push(nhs);
                }
            }
            let values = values
                .into_iter()
                .map(|v| TokenValue {
                    system: Some(expected_system.to_string()),
                    value: if def.index == Index::Patient {
                        v.value
                    } else {
                        v.value.to_ascii_uppercase()
                    },
                })
                .collect();
            Ok(Filter::Token {
                index: def.index,
                values,
            })
        }
        ParamKind::Date => {
            let (prefix, lo, hi) = parse_date(name, value)?;
            Ok(Filter::Date {
                index: def.index,
                prefix,
                lo,
                hi,
            })
        }
        ParamKind::String => Ok(Filter::StartsWith {
            index: def.index,
            value: value.to_lowercase(),
        }),
        ParamKind::FlagStatus => {
            let statuses = value
                .split(',')
                .map(|s| match s.trim() {
                    "active" => Ok(FlagStatus::Active),
                    "inactive" => Ok(FlagStatus::Inactive),
                    "entered-in-error" => Ok(FlagStatus::EnteredInError),
                    other => Err(invalid(name, format!("unknown Flag status {other:?}"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Filter::FlagStatus(statuses))
        }
    }
}

fn parse_tokens(name: &str, value: &str) -> Result<Vec<TokenValue>, FhirError> {
    value
        .split(',')
        .map(|alt| {
            let (system, value) = match alt.split_once('|') {
                Some((s, v)) => (
                    if s.is_empty() {
                        None
                    } else {
                        Some(s.to_string())
                    },
                    v,
                ),
                None => (None, alt),
            };
            if value.is_empty() {
                return Err(invalid(
                    name,
                    "a token value is required (system|value or value)",
                ));
            }
            Ok(TokenValue {
                system,
                value: value.to_string(),
            })
        })
        .collect()
}

/// A search's filter parameters on `searched`, each with its definition: the result
/// parameters go into `paging`, empty values are skipped (FHIR: ignored), and a parameter the
/// type does not have is 400 not-supported. For the types whose parser is their own (the
/// access history, Subscriptions, upload reports).
pub fn filter_params(
    searched: Searched,
    query: &str,
    paging: &mut Paging,
) -> Result<Vec<(&'static ParamDef, String, String)>, FhirError> {
    let mut filters = Vec::new();
    let mut limits = Limits::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        if name.is_empty() || value.is_empty() || result_param(&name, &value, searched, paging)? {
            continue;
        }
        limits.count(&name, &value)?;
        let def = find(searched, &name).ok_or_else(|| FhirError::UnknownParameter {
            param: name.clone(),
        })?;
        filters.push((def, name, value));
    }
    Ok(filters)
}

/// The logical ids an `_id` value names (comma = OR).
pub fn ids_of(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::params::{SortKey, MAX_COUNT};

    #[test]
    fn an_nhs_number_search_is_a_patient_token_filter() {
        let req = parse(
            ResourceType::Flag,
            "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753&_include=Flag:author",
        )
        .unwrap();
        assert_eq!(req.patients.len(), 1);
        assert_eq!(
            req.includes,
            vec![("Flag:author", ResourceType::Organization)]
        );
        assert!(
            matches!(&req.filters[0], Filter::Token { index: Index::Patient, values } if values[0].value == "9449306753")
        );
    }

    #[test]
    fn an_invalid_nhs_number_is_invalid_search_data() {
        let err = parse(ResourceType::Flag, "patient:identifier=9449306754").unwrap_err();
        assert!(matches!(err, FhirError::InvalidSearch { .. }));
    }

    #[test]
    fn unknown_and_unsupported_parameters_are_rejected() {
        for q in ["foo=bar", "patient=123", "status:not=active"] {
            assert!(
                matches!(
                    parse(ResourceType::Flag, q),
                    Err(FhirError::UnknownParameter { .. })
                ),
                "{q}"
            );
        }
    }

    #[test]
    fn count_is_clamped_and_must_be_a_number() {
        assert_eq!(
            parse(ResourceType::Flag, "_count=10000").unwrap().count,
            MAX_COUNT
        );
        assert!(parse(ResourceType::Flag, "_count=ten").is_err());
    }

    #[test]
    fn a_day_against_an_instant_is_the_uk_day_and_against_a_date_the_date() {
        // 1 June 2026 in England: from 23:00 UTC on 31 May.
        let (_, lo, hi) = parse_instant_date("_lastUpdated", "2026-06-01").unwrap();
        assert_eq!(lo, 1_780_268_400_000);
        assert_eq!(hi - lo, 86_400_000);
        let (_, lo, _) = parse_instant_date("_lastUpdated", "2026-06").unwrap();
        assert_eq!(lo, 1_780_268_400_000);
        // In winter the UK day is the UTC day.
        let (_, lo, _) = parse_instant_date("_lastUpdated", "2026-01-05").unwrap();
        assert_eq!(lo, 1_767_571_200_000);
        // A plan's period is a plain date, kept at UTC midnight.
        let (_, lo, _) = parse_date("date", "2026-06-01").unwrap();
        assert_eq!(lo, 1_780_272_000_000);
        // An instant is itself, whatever the parameter.
        let at = "2026-05-31T23:30:00Z";
        assert_eq!(
            parse_date("d", at).unwrap(),
            parse_instant_date("d", at).unwrap()
        );
        assert_eq!(
            instant_bounds("date", "2026-06-01").unwrap(),
            (1_780_268_400_000, 1_780_354_800_000)
        );
        let req = parse(ResourceType::Flag, "_lastUpdated=2026-06-01").unwrap();
        assert!(matches!(
            req.filters[0],
            Filter::LastUpdated {
                lo: 1_780_268_400_000,
                ..
            }
        ));
    }

    #[test]
    fn too_many_parameters_or_values_are_invalid_search_data_naming_the_parameter() {
        let many = vec!["_lastUpdated=gt2020"; MAX_SEARCH_PARAMS + 1].join("&");
        let at_most = vec!["_lastUpdated=gt2020"; MAX_SEARCH_PARAMS].join("&");
        let ids: Vec<String> = (0..=MAX_SEARCH_VALUES).map(|i| format!("x{i}")).collect();
        let values = format!("_id={}", ids.join(","));
        let enough = format!("_id={}", ids[1..].join(","));
        for ty in [
            ResourceType::Flag,
            ResourceType::EpisodeOfCare,
            ResourceType::Organization,
        ] {
            for (query, param) in [(&many, "_lastUpdated"), (&values, "_id")] {
                match parse(ty, query) {
                    Err(FhirError::InvalidSearch { param: p, reason }) => {
                        assert_eq!(p, param);
                        assert!(reason.contains("at most"), "{reason}");
                    }
                    other => panic!("{ty:?} {param}: {other:?}"),
                }
            }
            assert!(parse(ty, &at_most).is_ok());
            assert!(parse(ty, &enough).is_ok());
            // Result parameters are not counted.
            let paging = vec!["_count=5"; 100].join("&");
            assert!(parse(ty, &paging).is_ok());
        }
        let includes = vec!["_include=Flag:author"; MAX_SEARCH_PARAMS + 1].join("&");
        assert!(parse(ResourceType::Flag, &includes).is_err());
        let mut paging = Paging::default();
        for searched in [
            Searched::AuditEvent,
            Searched::Subscription,
            Searched::Bundle,
        ] {
            assert!(matches!(
                filter_params(searched, &many, &mut paging),
                Err(FhirError::InvalidSearch { .. })
            ));
            assert!(matches!(
                filter_params(searched, &values, &mut paging),
                Err(FhirError::InvalidSearch { .. })
            ));
        }
    }

    #[test]
    fn sort_takes_the_types_keys_in_both_directions() {
        let req = parse(ResourceType::EpisodeOfCare, "_sort=-date").unwrap();
        assert_eq!(
            req.sort,
            Some(Sort {
                key: SortKey::Date,
                descending: true
            })
        );
        assert!(parse(ResourceType::Flag, "_sort=_lastUpdated").is_ok());
        let err = parse(ResourceType::Flag, "_sort=date").unwrap_err();
        assert!(matches!(err, FhirError::InvalidSearch { .. }));
    }

    #[test]
    fn empty_values_are_ignored() {
        assert!(parse(ResourceType::Flag, "status=")
            .unwrap()
            .filters
            .is_empty());
    }
}
