//! The views' search parameters (`search::params::view_params`): the child's NHS number,
//! required, once and one value, in the forms the guides use; the other parameters an endpoint
//! takes; anything else is 400.

use crate::error::{FhirError, FhirResult};
use crate::fhir::types::NHS_NUMBER_SYSTEM;
use crate::fhir::NhsNumber;
use crate::search::params::{view_params, ViewParamKind, ViewSearch};

/// What the guides' error table says for every NHS number problem.
pub const INVALID_NHS_NUMBER: &str = "Invalid NHS number";

/// A view search: the child, and the endpoint's other parameters in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewQuery {
    pub nhs: NhsNumber,
    pub others: Vec<(String, String)>,
}

fn invalid(param: &str) -> FhirError {
    FhirError::InvalidSearch {
        param: param.to_string(),
        reason: INVALID_NHS_NUMBER.into(),
    }
}

/// One NHS number: `N`, `https://fhir.nhs.uk/Id/nhs-number|N`, and where `patient_reference`
/// allows it `Patient/N`.
fn nhs_number(param: &str, value: &str, patient_reference: bool) -> FhirResult<NhsNumber> {
    let value = match value.strip_prefix("Patient/") {
        Some(rest) if patient_reference => rest,
        _ => value,
    };
    let number = match value.split_once('|') {
        Some((system, number)) if system == NHS_NUMBER_SYSTEM => number,
        Some(_) => return Err(invalid(param)),
        None => value,
    };
    NhsNumber::parse(number).map_err(|_| invalid(param))
}

/// Parses a view search's query by its parameter table: the NHS number under any of its names,
/// the search's other parameters kept in order, an `_include` only with a value the table
/// lists; `_format` is taken (the negotiation checked it); empty values are ignored.
pub fn parse(query: &str, search: ViewSearch) -> FhirResult<ViewQuery> {
    let params = view_params(search);
    let (patient_names, patient_reference) = params
        .iter()
        .find_map(|p| match p.kind {
            ViewParamKind::Patient { reference } => Some((p.names, reference)),
            _ => None,
        })
        .ok_or_else(|| FhirError::internal("a view search without the NHS number"))?;
    let others: Vec<&str> = params
        .iter()
        .filter(|p| !matches!(p.kind, ViewParamKind::Patient { .. }))
        .flat_map(|p| p.names.iter().copied())
        .collect();
    let mut nhs = None;
    let mut rest = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        if name.is_empty() || value.is_empty() || name == "_format" {
            continue;
        }
        if patient_names.contains(&name.as_str()) {
            if nhs.is_some() {
                return Err(invalid(&name)); // more than one
            }
            nhs = Some(nhs_number(&name, &value, patient_reference)?);
        } else if others.contains(&name.as_str()) {
            rest.push((name, value));
        } else {
            return Err(FhirError::UnknownParameter { param: name });
        }
    }
    let nhs = nhs.ok_or_else(|| invalid(patient_names.first().copied().unwrap_or("patient")))?;
    // After the child: a missing or bad NHS number is said first.
    let unlisted = |(name, value): &&(String, String)| {
        params.iter().any(|p| {
            p.kind == ViewParamKind::Include
                && p.names.contains(&name.as_str())
                && !p.values.contains(&value.as_str())
        })
    };
    if let Some((name, value)) = rest.iter().find(unlisted) {
        return Err(FhirError::UnknownParameter {
            param: format!("{name}={value}"),
        });
    }
    Ok(ViewQuery { nhs, others: rest })
}

/// Whether a token search value (a comma-separated OR list of `code`, `system|code` or
/// `|code`, FHIR's "no system") names one of `codings` (system, code).
pub fn token_matches(value: &str, codings: &[(&str, &str)]) -> bool {
    value.split(',').any(|token| match token.split_once('|') {
        Some((system, code)) => codings.iter().any(|(s, c)| *c == code && *s == system),
        None => codings.iter().any(|(_, c)| *c == token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nhs_number_is_taken_in_each_form_the_guides_use() {
        for query in [
            "patient=9449306753",
            "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753",
            "patient=Patient/9449306753",
        ] {
            let q = parse(query, ViewSearch::Flag).unwrap();
            assert_eq!(q.nhs.as_str(), "9449306753", "{query}");
        }
        assert!(parse("patient=Patient/9449306753", ViewSearch::CareTeam).is_err());
    }

    #[test]
    fn a_missing_bad_repeated_or_foreign_number_is_invalid() {
        for query in [
            "",
            "patient=9449306754",
            "patient=944930675",
            "patient=9449306753,9000000009",
            "patient=9449306753&patient:identifier=9449306753",
            "patient=http://fhir.nhs.uk/id/nhs-number|9449306753",
        ] {
            match parse(query, ViewSearch::Flag) {
                Err(FhirError::InvalidSearch { reason, .. }) => {
                    assert_eq!(reason, INVALID_NHS_NUMBER, "{query}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn any_other_parameter_is_unknown() {
        assert!(matches!(
            parse("patient=9449306753&status=active", ViewSearch::Flag),
            Err(FhirError::UnknownParameter { .. })
        ));
        let q = parse("patient=9449306753&code=x&_format=json", ViewSearch::Flag).unwrap();
        assert_eq!(q.others, [("code".to_string(), "x".to_string())]);
    }

    #[test]
    fn an_include_is_taken_only_in_the_forms_the_table_lists() {
        assert!(parse("patient=9449306753&_include=Flag:detail", ViewSearch::Flag).is_ok());
        assert!(matches!(
            parse("patient=9449306753&_include=Flag:author", ViewSearch::Flag),
            Err(FhirError::UnknownParameter { param }) if param == "_include=Flag:author"
        ));
        assert!(matches!(
            parse("_include=Flag:author", ViewSearch::Flag),
            Err(FhirError::InvalidSearch { .. })
        ));
    }

    #[test]
    fn tokens_match_with_or_without_their_system() {
        let codings = [("https://s", "CP-IS")];
        assert!(token_matches("CP-IS", &codings));
        assert!(token_matches("https://s|CP-IS", &codings));
        assert!(
            !token_matches("|CP-IS", &codings),
            "|code: a code with no system"
        );
        assert!(token_matches("FGM,CP-IS", &codings));
        assert!(!token_matches("https://other|CP-IS", &codings));
        assert!(!token_matches("FGM", &codings));
    }
}
