//! The result parameters every search takes: `_count`, `_offset`, `_sort` and the others the
//! table names, into a `Paging`.

use super::params::{sort_keys, Searched, SortKey, DEFAULT_COUNT, MAX_COUNT, RESULT_PARAMS};
use super::parse::invalid;
use crate::error::FhirError;

/// `_sort`: one key, ascending or (`-key`) descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// Which page of the matches, in which order: `_count`, `_offset`, `_sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub count: usize,
    pub offset: usize,
    /// `None`: the type's own order (newest first).
    pub sort: Option<Sort>,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            count: DEFAULT_COUNT,
            offset: 0,
            sort: None,
        }
    }
}

impl Paging {
    /// Whether the page runs oldest first (`_sort` ascending); the default is newest first.
    pub fn oldest_first(&self) -> bool {
        self.sort.is_some_and(|sort| !sort.descending)
    }

    /// `_count` as a SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        i64::try_from(self.count).unwrap_or(i64::MAX)
    }

    /// `_offset` as a SQL `OFFSET`.
    pub fn skip(&self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }

    /// `_sort` as the client wrote it, for `self`/`next` links.
    pub fn sort_param(&self, searched: Searched) -> Option<String> {
        let sort = self.sort?;
        let (name, _) = sort_keys(searched)
            .iter()
            .find(|(_, key)| *key == sort.key)?;
        Some(if sort.descending {
            format!("-{name}")
        } else {
            (*name).to_string()
        })
    }
}

/// `_count` (clamped to the maximum), `_offset`, `_sort` (one of the type's keys) and the
/// other result parameters every search takes. `Ok(false)` when `name` is none of them.
pub fn result_param(
    name: &str,
    value: &str,
    searched: Searched,
    paging: &mut Paging,
) -> Result<bool, FhirError> {
    match name {
        "_count" => {
            let n: usize = value
                .parse()
                .map_err(|_| invalid("_count", "must be a non-negative whole number"))?;
            paging.count = n.min(MAX_COUNT);
        }
        "_offset" => {
            paging.offset = value
                .parse()
                .map_err(|_| invalid("_offset", "must be a non-negative whole number"))?;
        }
        "_sort" => paging.sort = Some(parse_sort(searched, value)?),
        other if RESULT_PARAMS.contains(&other) => {}
        _ => return Ok(false),
    }
    Ok(true)
}

fn parse_sort(searched: Searched, value: &str) -> Result<Sort, FhirError> {
    let (name, descending) = match value.strip_prefix('-') {
        Some(name) => (name, true),
        None => (value, false),
    };
    let keys = sort_keys(searched);
    keys.iter()
        .find(|(key_name, _)| *key_name == name)
        .map(|(_, key)| Sort {
            key: *key,
            descending,
        })
        .ok_or_else(|| {
            let names: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
            invalid(
                "_sort",
                format!(
                    "{} is sorted by {} (or -{}: descending), one key",
                    searched.name(),
                    names.join(" or "),
                    names.join(" or -")
                ),
            )
        })
}
