//! The access history (`AuditEvent?`, SPEC §3): who may see which accesses, and whether the
//! search is itself an access to record.
//!
//! | Caller      | With `patient:identifier`                         | Without                   |
//! |-------------|---------------------------------------------------|---------------------------|
//! | health-care | 25 newest shown accesses; an audited access       | 400 (cannot browse)       |
//! | social-care | the same, only for a child with a plan of its own | its children's shown accesses (pull), paged |
//! | operations  | every access, paged                               | every access, paged       |

use serde_json::Value;

use super::parse_content;
use super::search::matches;
use crate::audit::{AccessContext, Audience, Disclosed};
use crate::auth::{Action, Caller, HistoryView, LaScope};
use crate::db::audit::{self, EventPage, HistoryScope, HistoryWindow};
use crate::db::{store, DbConn};
use crate::error::FhirError;
use crate::fhir::audit_event::Report;
use crate::fhir::organization::referenced_ods;
use crate::fhir::ResourceType;
use crate::search::audit::AuditQuery;
use crate::search::parse as parse_search;

/// The history a clinician or LA is shown: the most recent accesses only.
pub const HISTORY_CAP: usize = 25;

/// What a history search will return, decided before anything is recorded.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scope: HistoryScope,
    pub cap: Option<usize>,
    /// The child and the LAs of the plans the caller may see: the search is an access to
    /// record when this is set (health-care searching a child who has a plan).
    audited_child: Option<(String, Vec<String>)>,
    /// Whether the events may name only plans the caller can still see (health-care: an
    /// event does not point at a plan since deleted or withdrawn).
    pub only_visible_plans: bool,
    /// A governance report: the search is recorded as a governance access about this.
    report: Option<(Report, String)>,
}

/// What a history search will return, with the access it makes: searching the history of a
/// child with a plan is itself an access, recorded before the page is read (so the history
/// includes it).
pub fn prepare(
    conn: &mut DbConn,
    ctx: &AccessContext,
    q: &AuditQuery,
) -> Result<Disclosed<Plan>, FhirError> {
    let plan = decide(conn, ctx.caller(), q, ctx.now_ms())?;
    if let Some((report, subject)) = plan.report.clone() {
        return Ok(ctx.report_disclosed(plan, report, &subject));
    }
    let child = plan
        .audited_child
        .as_ref()
        .map(|(nhs, las)| (nhs.clone(), las.clone()));
    Ok(ctx.history_disclosed(
        plan,
        child.as_ref().map(|(nhs, las)| (nhs.as_str(), las.clone())),
    ))
}

/// The clinician's access history of a child a disclosure has just looked up (the viewer's
/// Previous views, SPEC §10): the plan `decide` makes for health care, but recording nothing,
/// since the lookup it goes with is itself the access. It takes the lookup's context, so it
/// can only be asked inside that disclosure; its page is read once the access is committed.
pub(crate) fn clinician_history(
    conn: &mut DbConn,
    ctx: &AccessContext,
    q: &AuditQuery,
) -> Result<Plan, FhirError> {
    if ctx.caller().role().history_view() != HistoryView::Clinician {
        return Err(FhirError::Forbidden(
            "the clinician's history of a lookup is for health care".into(),
        ));
    }
    let plan = decide(conn, ctx.caller(), q, ctx.now_ms())?;
    Ok(Plan {
        audited_child: None,
        ..plan
    })
}

/// A history search that names no child: an LA's pull, operations' everything, a governance
/// report by user or organisation; health care cannot browse.
fn without_child(view: HistoryView, caller: &Caller, q: &AuditQuery) -> Result<Plan, FhirError> {
    let unaudited = |scope| Plan {
        scope,
        cap: None,
        audited_child: None,
        only_visible_plans: false,
        report: None,
    };
    match view {
        HistoryView::Clinician => Err(FhirError::InvalidSearch {
            param: "patient:identifier".into(),
            reason: "health-care searches the access history of one NHS number at a time".into(),
        }),
        HistoryView::OwnLa => Ok(unaudited(HistoryScope::La {
            ods: caller.org().unwrap_or_default().to_string(),
        })),
        HistoryView::Reports => report_plan(q),
        HistoryView::Everything => Ok(unaudited(HistoryScope::All)),
    }
}

fn decide(conn: &mut DbConn, caller: &Caller, q: &AuditQuery, now: i64) -> Result<Plan, FhirError> {
    caller.require(Action::ReadAccessHistory)?;
    let view = caller.role().history_view();
    if q.pattern.is_some() && view == HistoryView::Clinician {
        return Err(FhirError::Forbidden(
            "attendance-pattern is for the LA and operations: a clinician sees the summary on each access".into(),
        ));
    }
    if (q.agent_sub.is_some() || q.agent_org.is_some()) && !caller.may(Action::ReadAccessReports) {
        return Err(FhirError::Forbidden(
            "agent-identifier and agent-organization are for governance and operations".into(),
        ));
    }

    let Some(nhs) = q.patient.as_ref().map(|n| n.as_str().to_string()) else {
        return without_child(view, caller, q);
    };
    // Whose plans matter: an LA's own (else 403), those health-care may see (else no
    // history). Operations' governance view needs no plan, and is not itself an access.
    let las = match view {
        HistoryView::Reports => return report_plan(q),
        HistoryView::Everything => {
            return Ok(Plan {
                scope: HistoryScope::ChildAll { nhs_number: nhs },
                cap: None,
                audited_child: None,
                only_visible_plans: false,
                report: None,
            })
        }
        HistoryView::OwnLa | HistoryView::Clinician => plan_las(conn, caller, &nhs, now)?,
    };
    if view == HistoryView::OwnLa {
        let scope = HistoryScope::ChildForLa {
            nhs_number: nhs,
            ods: caller.org().unwrap_or_default().to_string(),
        };
        return if las.is_empty() {
            Err(FhirError::Forbidden(
                "the access history is shown only for children with a plan of the caller's LA"
                    .into(),
            ))
        } else {
            Ok(Plan {
                scope,
                cap: Some(HISTORY_CAP),
                audited_child: None,
                only_visible_plans: false,
                report: None,
            })
        };
    }
    let scope = HistoryScope::Child {
        nhs_number: nhs.clone(),
    };
    // A child with no plan the clinician may see has no history to show either: the history
    // is shown only with (and recorded like) the plan itself.
    Ok(if las.is_empty() {
        Plan {
            scope,
            cap: Some(0),
            audited_child: None,
            only_visible_plans: true,
            report: None,
        }
    } else {
        Plan {
            scope,
            cap: Some(HISTORY_CAP),
            audited_child: Some((nhs, las)),
            only_visible_plans: true,
            report: None,
        }
    })
}

/// The longest period one report may cover: `date=ge` and `date=le` at most 31 days apart
/// (the `le` day included, and an hour for a clock change).
const MAX_REPORT_SPAN_MS: i64 = (32 * 24 + 1) * 60 * 60 * 1000;

/// A governance report (SPEC §2): every access to one child, or by one user or organisation,
/// over at most a month, governance searches left out; the search itself is recorded.
fn report_plan(q: &AuditQuery) -> Result<Plan, FhirError> {
    let period = |reason: &str| FhirError::InvalidSearch {
        param: "date".into(),
        reason: reason.into(),
    };
    if !q.is_bounded() {
        return Err(period(
            "a report needs both ends of its period: date=ge{day}&date=le{day}",
        ));
    }
    if q.to_ms.saturating_sub(q.from_ms) > MAX_REPORT_SPAN_MS {
        return Err(period(
            "a report covers at most 31 days (date=ge and date=le at most 31 days apart): ask for each month in turn",
        ));
    }
    let (report, subject) = match (&q.patient, &q.agent_sub, &q.agent_org) {
        (Some(nhs), _, _) => (Report::PatientAccess, nhs.as_str().to_string()),
        (None, Some(sub), _) => (Report::UserAccess, sub.clone()),
        (None, None, Some(org)) => (Report::OrganisationAccess, org.clone()),
        (None, None, None) => {
            return Err(FhirError::InvalidSearch {
                param: "patient:identifier".into(),
                reason: "a report names a child (patient:identifier), a user (agent-identifier) or an organisation (agent-organization)".into(),
            })
        }
    };
    let scope = match &q.patient {
        Some(nhs) => HistoryScope::ChildAll {
            nhs_number: nhs.as_str().to_string(),
        },
        None => HistoryScope::All,
    };
    Ok(Plan {
        scope,
        cap: None,
        audited_child: None,
        only_visible_plans: false,
        report: Some((report, subject)),
    })
}

/// The report a query asks for, for `cpis report`: run by whoever holds the database itself,
/// so nothing goes through the API and nothing is recorded. The same rules as the API's
/// report (a child, user or organisation; at most 31 days).
pub fn offline_report(q: &AuditQuery) -> Result<Plan, FhirError> {
    report_plan(q)
}

impl Plan {
    /// How many accesses the report holds.
    pub fn report_count(&self, conn: &mut DbConn, q: &AuditQuery) -> Result<i64, FhirError> {
        Ok(audit::report_count(conn, &self.scope, &self.window(q))?)
    }

    /// What the page of this plan selects of a query's window.
    pub fn window(&self, q: &AuditQuery) -> HistoryWindow {
        HistoryWindow {
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            pattern: q.pattern,
            ids: q.ids.clone(),
            agent_sub: q.agent_sub.clone(),
            agent_org: q.agent_org.clone(),
            without_governance: self.report.is_some(),
        }
    }

    /// A report's accesses, oldest first, a chunk at a time after `after` (CSV).
    pub fn report_chunk(
        &self,
        conn: &mut DbConn,
        q: &AuditQuery,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<audit::StoredAccess>, FhirError> {
        Ok(audit::report_chunk(
            conn,
            &self.scope,
            &self.window(q),
            after,
            limit,
        )?)
    }
}

/// The LAs of the child's plans that `caller` may see (with the caller's own search rules).
fn plan_las(
    conn: &mut DbConn,
    caller: &Caller,
    nhs: &str,
    now: i64,
) -> Result<Vec<String>, FhirError> {
    let req = parse_search(
        ResourceType::EpisodeOfCare,
        &format!("patient:identifier={nhs}&_count=500"),
    )?;
    let found = matches(conn, caller, &req, now)?;
    let mut las: Vec<String> = found
        .entries
        .iter()
        .filter_map(|e| referenced_ods(e.resource.get("managingOrganization")))
        .collect();
    las.sort();
    las.dedup();
    Ok(las)
}

/// One page of the history as AuditEvent resources, newest first (or, `_sort` ascending,
/// oldest first). Under a cap, the page is of the `cap` most recent accesses in either order.
pub fn page(
    conn: &mut DbConn,
    plan: &Plan,
    q: &AuditQuery,
) -> Result<(Vec<Value>, i64), FhirError> {
    let paging = &q.paging;
    let window = plan.window(q);
    let (accesses, total) = match plan.cap {
        Some(cap) => {
            let cap = i64::try_from(cap).unwrap_or(i64::MAX);
            let EventPage {
                mut accesses,
                total,
            } = audit::history(conn, &plan.scope, &window, (cap, 0), false)?;
            if paging.oldest_first() {
                accesses.reverse();
            }
            let page = accesses
                .into_iter()
                .skip(paging.offset)
                .take(paging.count)
                .collect();
            (page, total.min(cap))
        }
        None => {
            let EventPage { accesses, total } = audit::history(
                conn,
                &plan.scope,
                &window,
                (paging.limit(), paging.skip()),
                paging.oldest_first(),
            )?;
            (accesses, total)
        }
    };
    let mut events = match &plan.scope {
        HistoryScope::ChildForLa { ods, .. } | HistoryScope::La { ods } => {
            let seqs: Vec<i64> = accesses.iter().map(|a| a.seq).collect();
            let marks = audit::la_marks(conn, ods, &seqs)?;
            accesses
                .iter()
                .map(|a| {
                    rendered(
                        a,
                        Audience::La {
                            ods,
                            pattern_marked: marks.contains(&a.seq),
                        },
                    )
                })
                .collect::<Result<Vec<Value>, _>>()?
        }
        _ => accesses
            .iter()
            .map(|a| rendered(a, Audience::Whole))
            .collect::<Result<Vec<Value>, _>>()?,
    };
    if plan.only_visible_plans {
        drop_withdrawn_entities(conn, &mut events)?;
    }
    Ok((events, total))
}

/// Removes from `events` the entities naming a plan (or its Flag, which shares its id) that has
/// since been deleted or withdrawn: health-care sees no trace of it anywhere.
fn drop_withdrawn_entities(conn: &mut DbConn, events: &mut [Value]) -> Result<(), FhirError> {
    let plan_id = |reference: &str| {
        reference
            .strip_prefix("EpisodeOfCare/")
            .or_else(|| reference.strip_prefix("Flag/"))
            .map(str::to_string)
    };
    let referenced = |event: &Value| -> Vec<String> {
        event["entity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.pointer("/what/reference").and_then(Value::as_str))
            .filter_map(plan_id)
            .collect()
    };
    let mut ids: Vec<String> = events.iter().flat_map(referenced).collect();
    ids.sort();
    ids.dedup();
    let visible: std::collections::BTreeSet<String> =
        store::current_many(conn, ResourceType::EpisodeOfCare.as_str(), &ids)?
            .iter()
            .map(|row| Ok((row.id.clone(), parse_content(row)?)))
            .collect::<Result<Vec<_>, FhirError>>()?
            .into_iter()
            .filter(|(_, plan)| plan["status"] != "entered-in-error")
            .map(|(id, _)| id)
            .collect();
    for event in events.iter_mut() {
        if let Some(entities) = event.get_mut("entity").and_then(Value::as_array_mut) {
            entities.retain(|e| {
                match e
                    .pointer("/what/reference")
                    .and_then(Value::as_str)
                    .and_then(plan_id)
                {
                    Some(id) => visible.contains(&id),
                    None => true,
                }
            });
        }
    }
    Ok(())
}

/// One AuditEvent: operations see any; an LA only those its history shows (unscheduled
/// health-care accesses to its own children), never scheduled or governance ones.
pub fn read(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Value, FhirError> {
    caller.require(Action::ReadAuditEvent)?;
    let not_found = || FhirError::NotFound {
        ty: "AuditEvent".into(),
        id: id.to_string(),
    };
    let audit::StoredEvent { access, las } = audit::find(conn, id)?.ok_or_else(not_found)?;
    match caller.la_scope() {
        LaScope::Every => rendered(&access, Audience::Whole),
        LaScope::Own(ods) => {
            let own = las
                .iter()
                .find(|la| la.shown && la.la_ods.eq_ignore_ascii_case(&ods))
                .ok_or_else(|| {
                    FhirError::Forbidden(
                        "this access is not in the history of any child of the caller's LA".into(),
                    )
                })?;
            rendered(
                &access,
                Audience::La {
                    ods: &ods,
                    pattern_marked: own.pattern_marked,
                },
            )
        }
    }
}

/// A stored access as its AuditEvent for `audience`.
fn rendered(access: &audit::StoredAccess, audience: Audience<'_>) -> Result<Value, FhirError> {
    let json = crate::audit::render(access, audience).map_err(FhirError::internal)?;
    serde_json::from_str(&json).map_err(FhirError::internal)
}
