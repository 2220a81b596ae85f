//! `AuditEvent?` search (SPEC §4), with the parameters of `params` (`patient:identifier`,
//! `_lastUpdated` and `date`, both the access's `recorded` instant) and `_count`/`_offset` paging.

use super::params::{ParamKind, Searched};
use super::parse::{filter_params, ids_of, instant_bounds, Paging};
use crate::error::FhirError;
use crate::fhir::audit_event::SDS_USER_SYSTEM;
use crate::fhir::index::Index;
use crate::fhir::nhs_number::NhsNumber;
use crate::fhir::types::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub patient: Option<NhsNumber>,
    /// Recorded in `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    /// `attendance-pattern`: only the accesses marked as reaching a pattern (or only the others).
    pub pattern: Option<bool>,
    /// `_id`: only these accesses.
    pub ids: Option<Vec<String>>,
    /// `agent-identifier`: only the accesses of this person (SDS user id).
    pub agent_sub: Option<String>,
    /// `agent-organization`: only the accesses from this organisation (ODS code).
    pub agent_org: Option<String>,
    pub paging: Paging,
    /// `(name, value)` of the filters, for `self`/`next` links.
    pub canonical: Vec<(String, String)>,
}

impl AuditQuery {
    /// No filter: every access the caller may see, the first page.
    fn every_access() -> AuditQuery {
        AuditQuery {
            patient: None,
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            pattern: None,
            ids: None,
            agent_sub: None,
            agent_org: None,
            paging: Paging::default(),
            canonical: Vec::new(),
        }
    }

    /// The accesses of the child `nhs`, from a number already parsed: what
    /// `patient:identifier={nhs}` parses to (the NHS views parse theirs once, in the guides'
    /// forms).
    pub fn for_patient(nhs: NhsNumber) -> AuditQuery {
        let number = nhs.as_str().to_string();
        AuditQuery {
            patient: Some(nhs),
            canonical: vec![("patient:identifier".into(), number)],
            ..AuditQuery::every_access()
        }
    }
}

fn invalid(param: &str, reason: impl Into<String>) -> FhirError {
    FhirError::InvalidSearch {
        param: param.to_string(),
        reason: reason.into(),
    }
}

/// The value of a token search on `system` (`system|value`, `|value` or `value`).
fn token_of<'a>(name: &str, value: &'a str, system: &str) -> Result<&'a str, FhirError> {
    let code = match value.split_once('|') {
        Some((given, code)) if given.is_empty() || given == system => code,
        Some(_) => {
            return Err(invalid(
                name,
                format!("{name} takes identifiers of {system}"),
            ))
        }
        None => value,
    };
    if code.is_empty() || code.contains(',') {
        return Err(invalid(name, format!("{name} takes one identifier")));
    }
    Ok(code)
}

impl AuditQuery {
    /// Whether both ends of the period were given (`date=ge…&date=le…` or `_lastUpdated`).
    pub fn is_bounded(&self) -> bool {
        self.from_ms != i64::MIN && self.to_ms != i64::MAX
    }
}

pub fn parse(query: &str) -> Result<AuditQuery, FhirError> {
    let mut q = AuditQuery::every_access();
    for (def, name, value) in filter_params(Searched::AuditEvent, query, &mut q.paging)? {
        match def.kind {
            ParamKind::ReferenceIdentifier => {
                let number = match value.split_once('|') {
                    Some((system, number)) if system.is_empty() || system == NHS_NUMBER_SYSTEM => {
                        number
                    }
                    Some(_) => {
                        return Err(invalid(
                            &name,
                            format!("{name} takes identifiers of {NHS_NUMBER_SYSTEM}"),
                        ))
                    }
                    None => value.as_str(),
                };
                let nhs = NhsNumber::parse(number)
                    .map_err(|e| invalid(&name, format!("invalid NHS number: {e}")))?;
                if q.patient.as_ref().is_some_and(|p| *p != nhs) {
                    return Err(invalid(&name, "one NHS number at a time"));
                }
                q.patient = Some(nhs);
                q.canonical.push((name, value));
            }
            ParamKind::Id => {
                q.ids = Some(ids_of(&value));
                q.canonical.push((name, value));
            }
            ParamKind::Token if def.index == Index::AgentSub => {
                q.agent_sub = Some(token_of(&name, &value, SDS_USER_SYSTEM)?.to_string());
                q.canonical.push((name, value));
            }
            ParamKind::Token if def.index == Index::AgentOrg => {
                let ods = token_of(&name, &value, ODS_SYSTEM)?.to_ascii_uppercase();
                q.agent_org = Some(ods);
                q.canonical.push((name, value));
            }
            ParamKind::Token => {
                q.pattern = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid(&name, "true or false")),
                });
                q.canonical.push((name, value));
            }
            _ => {
                let (from, to) = instant_bounds(&name, &value)?;
                q.from_ms = q.from_ms.max(from);
                q.to_ms = q.to_ms.min(to);
                q.canonical.push((name, value));
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_accesses_are_what_their_query_parses_to() {
        let nhs = NhsNumber::parse("9449306753").unwrap();
        assert_eq!(
            AuditQuery::for_patient(nhs),
            parse("patient:identifier=9449306753").unwrap()
        );
    }

    #[test]
    fn a_child_and_a_time_window_are_parsed() {
        let q = parse(
            "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753&_lastUpdated=gt2026-01-01T00:00:00.000Z",
        )
        .unwrap();
        assert_eq!(q.patient.unwrap().as_str(), "9449306753");
        assert_eq!(q.from_ms, 1_767_225_600_001);
        assert_eq!(q.to_ms, i64::MAX);
    }

    #[test]
    fn bad_numbers_and_unknown_parameters_are_rejected() {
        assert!(matches!(
            parse("patient:identifier=9449306754"),
            Err(FhirError::InvalidSearch { .. })
        ));
        assert!(matches!(
            parse("_include=AuditEvent:agent"),
            Err(FhirError::UnknownParameter { .. })
        ));
        assert!(matches!(
            parse("_sort=status"),
            Err(FhirError::InvalidSearch { .. })
        ));
        assert!(matches!(
            parse("date=ne2026-01-01"),
            Err(FhirError::InvalidSearch { .. })
        ));
    }
}
