//! The native plan or Flag search for one child, built from an NHS number already parsed: what
//! `patient:identifier={nhs}` with the type's `_include`s parses to, without writing the number
//! out and parsing it again (the NHS views parse theirs once, in the guides' forms).

use super::params::includes_for;
use super::parse::{Filter, SearchRequest, TokenValue};
use crate::fhir::index::Index;
use crate::fhir::nhs_number::NhsNumber;
use crate::fhir::types::NHS_NUMBER_SYSTEM;
use crate::fhir::ResourceType;

impl SearchRequest {
    /// Every `ty` of the child `nhs`, with the type's `_include`s, `count` to a page.
    pub fn for_patient(ty: ResourceType, nhs: NhsNumber, count: usize) -> SearchRequest {
        let number = nhs.as_str().to_string();
        let mut request = SearchRequest::new(ty);
        request.filters.push(Filter::Token {
            index: Index::Patient,
            values: vec![TokenValue {
                system: Some(NHS_NUMBER_SYSTEM.into()),
                value: number.clone(),
            }],
        });
        request.includes = includes_for(ty).to_vec();
        request.count = count;
        request.canonical = std::iter::once(("patient:identifier".to_string(), number))
            .chain(
                request
                    .includes
                    .iter()
                    .map(|(include, _)| ("_include".to_string(), include.to_string())),
            )
            .collect();
        request.patients.push(nhs);
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_search_is_what_its_query_parses_to() {
        for (ty, include) in [
            (ResourceType::EpisodeOfCare, "EpisodeOfCare:organization"),
            (ResourceType::Flag, "Flag:author"),
        ] {
            let nhs = NhsNumber::parse("9449306753").unwrap();
            let built = SearchRequest::for_patient(ty, nhs, 500);
            let parsed = super::super::parse(
                ty,
                &format!("patient:identifier=9449306753&_include={include}&_count=500"),
            )
            .unwrap();
            assert_eq!(built.ty, parsed.ty);
            assert_eq!(built.filters, parsed.filters, "{include}");
            assert_eq!(built.includes, parsed.includes, "{include}");
            assert_eq!(built.count, parsed.count);
            assert_eq!(built.offset, parsed.offset);
            assert_eq!(built.sort, parsed.sort);
            assert_eq!(built.patients, parsed.patients);
            assert_eq!(built.canonical, parsed.canonical, "{include}");
        }
    }
}
