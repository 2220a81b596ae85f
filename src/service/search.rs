//! Search with each role's rules (SPEC §2, §4): health-care searches one NHS number at a time
//! and never sees withdrawn plans; an LA searches only its own plans and flags.

use serde_json::Value;

use super::parse_content;
use super::read::read_action;
use crate::audit::{AccessContext, Disclosed, Returned};
use crate::auth::{Caller, PlanSearch};
use crate::db::search as query;
use crate::db::DbConn;
use crate::error::FhirError;
use crate::fhir::bundle::SearchEntry;
use crate::fhir::index::Index;
use crate::fhir::types::ODS_SYSTEM;
use crate::fhir::{flag, ResourceType};
use crate::search::params::MAX_COUNT;
use crate::search::parse::{Filter, TokenValue};
use crate::search::SearchRequest;

pub struct Results {
    pub entries: Vec<SearchEntry>,
    pub total: i64,
}

/// The filters a caller's role adds to every search of `ty`.
fn role_filters(caller: &Caller, req: &SearchRequest) -> Result<Vec<Filter>, FhirError> {
    let plan_type = matches!(req.ty, ResourceType::EpisodeOfCare | ResourceType::Flag);
    if !plan_type {
        return Ok(Vec::new());
    }
    match caller.role().plan_search() {
        PlanSearch::OneChildWithoutWithdrawn => {
            if req.patients.len() != 1 {
                return Err(FhirError::InvalidSearch {
                    param: "patient:identifier".into(),
                    reason: "health-care searches need exactly one NHS number (patient:identifier); the register cannot be browsed".into(),
                });
            }
            let status_index = if req.ty == ResourceType::Flag {
                Index::StoredStatus
            } else {
                Index::Status
            };
            Ok(vec![Filter::NotToken {
                index: status_index,
                values: vec![TokenValue {
                    system: None,
                    value: "entered-in-error".into(),
                }],
            }])
        }
        PlanSearch::OwnLa => Ok(vec![Filter::Token {
            index: Index::Organization,
            values: vec![TokenValue {
                system: Some(ODS_SYSTEM.into()),
                value: caller.org().unwrap_or_default().to_string(),
            }],
        }]),
        PlanSearch::Register => Ok(Vec::new()),
    }
}

/// A search as `ctx.caller` may make it, with the accesses its matches make.
pub fn search(
    conn: &mut DbConn,
    ctx: &AccessContext,
    req: &SearchRequest,
) -> Result<Disclosed<Results>, FhirError> {
    let results = matches(conn, ctx.caller(), req, ctx.now_ms())?;
    let shown = results.entries.iter().filter(|e| e.mode == "match").count();
    // A total above what the page shows tells of the matches left out (`_count=0`, an
    // `_offset` past the end, `_summary=count`): where the search names its children or
    // plans, every match it counted is an access, read again in full to be recorded.
    let counted = if i64::try_from(shown).unwrap_or(i64::MAX) < results.total && names_records(req)
    {
        Some(matches(
            conn,
            ctx.caller(),
            &every_match(req, results.total)?,
            ctx.now_ms(),
        )?)
    } else {
        None
    };
    let accessed = counted.as_ref().unwrap_or(&results);
    let returned: Vec<Returned<'_>> = accessed
        .entries
        .iter()
        .filter(|e| e.mode == "match")
        .map(|e| Returned {
            ty: req.ty,
            content: &e.resource,
        })
        .collect();
    let accesses = ctx.accesses(&returned);
    Ok(Disclosed::with(results, accesses))
}

/// The most matches a search that shows fewer than it counts may count: each is read to be
/// recorded. A child has a few plans; only a count over many children reaches this.
const MAX_COUNTED: i64 = 10_000;

/// Whether a search names the children or plans it matches (an NHS number, a plan identifier,
/// an id): its total is then a disclosure about them. A count over the register (operations,
/// by status or date) names no one.
fn names_records(req: &SearchRequest) -> bool {
    !req.patients.is_empty()
        || req.filters.iter().any(|f| {
            matches!(f, Filter::Ids(_))
                || matches!(
                    f,
                    Filter::Token {
                        index: Index::Identifier,
                        ..
                    }
                )
        })
}

/// `req` with every match on one page and nothing included: what a total counted.
fn every_match(req: &SearchRequest, total: i64) -> Result<SearchRequest, FhirError> {
    if total > MAX_COUNTED {
        return Err(FhirError::InvalidSearch {
            param: "_count".into(),
            reason: format!(
                "this search counts {total} records without showing them, more than can be recorded one by one ({MAX_COUNTED}): narrow it, or page through its matches"
            ),
        });
    }
    Ok(SearchRequest {
        offset: 0,
        count: usize::try_from(total).unwrap_or(usize::MAX),
        sort: None,
        includes: Vec::new(),
        ..req.clone()
    })
}

/// A child's plans as `caller` may see them (health-care: none withdrawn), recording nothing:
/// for what supports a disclosure that records the child's access itself (the plans behind a
/// Flag search).
pub(crate) fn supporting_plans(
    conn: &mut DbConn,
    within: &AccessContext,
    nhs: &str,
) -> Result<Vec<Value>, FhirError> {
    let (caller, now) = (within.caller(), within.now_ms());
    let req = crate::search::parse(
        ResourceType::EpisodeOfCare,
        &format!("patient:identifier={nhs}&_count={MAX_COUNT}"),
    )?;
    Ok(matches(conn, caller, &req, now)?
        .entries
        .into_iter()
        .map(|e| e.resource)
        .collect())
}

/// The search's matches and includes, with nothing recorded: for the server's own questions
/// (which LAs hold plans for a child), never for a response. The Organizations `_include`d
/// (`Flag:author`, `EpisodeOfCare:organization`: the LA of each match) come with the matches,
/// from the same statement.
pub(super) fn matches(
    conn: &mut DbConn,
    caller: &Caller,
    req: &SearchRequest,
    now: i64,
) -> Result<Results, FhirError> {
    caller.require(read_action(req.ty))?;
    let extra = role_filters(caller, req)?;
    let with_organizations = req
        .includes
        .iter()
        .any(|(_, target)| *target == ResourceType::Organization);
    let page = query::execute(conn, req, &extra, now, with_organizations)?;
    let mut entries = Vec::with_capacity(page.rows.len() + page.organizations.len());
    for row in &page.rows {
        let mut resource = parse_content(row)?;
        if req.ty == ResourceType::Flag {
            flag::render(&mut resource, now);
        }
        entries.push(SearchEntry {
            resource,
            mode: "match",
        });
    }
    for row in &page.organizations {
        entries.push(SearchEntry {
            resource: parse_content(row)?,
            mode: "include",
        });
    }
    Ok(Results {
        entries,
        total: page.total,
    })
}
