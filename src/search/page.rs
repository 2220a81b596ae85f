//! A search's pages: the `self` and `next` links that say the search and its paging again, and
//! the searchset page they belong to.

use serde_json::Value;

use super::params::Searched;
use super::parse::Paging;
use crate::fhir::bundle::{search_link, searchset, SearchEntry};

/// A page's `self`/`next` link: the search's own parameters, then `_sort`, `_count` and
/// `_offset`.
pub fn page_link(
    base: &str,
    searched: Searched,
    canonical: &[(String, String)],
    paging: &Paging,
    offset: usize,
) -> String {
    let sort = paging.sort_param(searched).map(|sort| ("_sort", sort));
    let paging = sort
        .into_iter()
        .chain([("_count", paging.count.to_string())])
        .chain((offset > 0).then(|| ("_offset", offset.to_string())));
    let params = canonical
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .chain(paging);
    search_link(base, searched.name(), params)
}

/// A searchset page: `total` matches, this page as `paging` says.
pub fn searchset_page(
    base: &str,
    searched: Searched,
    canonical: &[(String, String)],
    paging: &Paging,
    total: i64,
    entries: Vec<SearchEntry>,
) -> Value {
    let next_offset = paging.offset + paging.count;
    let next = (paging.count > 0 && (next_offset as i64) < total)
        .then(|| page_link(base, searched, canonical, paging, next_offset));
    searchset(
        base,
        total,
        entries,
        page_link(base, searched, canonical, paging, paging.offset),
        next,
    )
}
