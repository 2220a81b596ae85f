//! Design C: the Patient Flag API (IG beta) at `{root}/patient-flags-api/FHIR/R4`
//! (`NHS-COMPAT.md` §2). A CP-IS `Flag` (also served as `PatientFlag`) points at its `CarePlan`
//! (the plan) and the plan at its `CareTeam` (the LA and its contacts).

use actix_web::{web, HttpRequest};
use chrono::NaiveDate;
use serde_json::{json, Value};

use super::map::{self, Phase};
use super::query::{self, token_matches};
use super::{
    capability, get_only, read_plan, require_health_care, searchset_of, view_base,
    PATIENT_FLAG_PATH,
};
use crate::app::reading::Reading;
use crate::app::respond::FhirResponse;
use crate::clock::uk_date;
use crate::error::{FhirError, FhirResult};
use crate::fhir::audit_event::AccessKind;
use crate::fhir::bundle::SearchEntry;
use crate::fhir::flag::{CATEGORY_SYSTEM, FLAG_DETAIL_EXTENSION};
use crate::fhir::ResourceType;
use crate::search::params::{ViewSearch, MAX_COUNT};
use crate::search::SearchRequest;
use crate::service;

const PROFILE: &str = "https://fhir.nhs.uk/England/StructureDefinition/";
const FLAG_CODE_SYSTEM: &str = "https://fhir.nhs.uk/England/CodeSystem/England-FlagCategoryPatient";
const FLAG_CODE: &str = "child-protection-information-system-flag";
const CP_IS_DISPLAY: &str = "Child Protection - Information Sharing Flag";
/// The codings of every Flag this server holds: `code` and `category` searches match these.
const FLAG_CODES: &[(&str, &str)] = &[(FLAG_CODE_SYSTEM, FLAG_CODE), (CATEGORY_SYSTEM, "CP-IS")];
const FLAG_CATEGORIES: &[(&str, &str)] = &[(CATEGORY_SYSTEM, "CP-IS")];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metadata", web::get().to(metadata))
        .service(get_only("/Flag", flag_search))
        .service(get_only("/PatientFlag", flag_search))
        .service(get_only("/Flag/{id}", flag_read))
        .service(get_only("/PatientFlag/{id}", flag_read))
        .service(get_only("/CarePlan/{id}", care_plan_read))
        .service(get_only("/CareTeam/{id}", care_team_read));
}

/// `meta` of a view resource: when its sources last changed, and its England profile.
fn meta(sources: &[&Value], profile: &str) -> Value {
    json!({"lastUpdated": map::last_updated(sources), "profile": [format!("{PROFILE}{profile}")]})
}

async fn metadata(state: web::Data<crate::app::AppState>) -> FhirResponse {
    FhirResponse::ok(capability::patient_flag(&state.base_url, state.cors))
}

fn base(r: &Reading) -> String {
    view_base(&r.state().base_url, PATIENT_FLAG_PATH)
}

/// A native Flag (status as of today) as an England-Flag-PatientFlag.
pub fn flag(native: &Value, plan: &Value, la: &Value) -> Value {
    json!({
        "resourceType": "Flag",
        "id": map::str_at(native, "/id"),
        "meta": meta(&[native], "England-Flag-PatientFlag"),
        "extension": [{
            "url": FLAG_DETAIL_EXTENSION,
            "valueReference": {
                "reference": format!("CarePlan/{}", map::str_at(plan, "/id")),
                "display": map::str_at(plan, "/type/0/coding/0/display")
            }
        }],
        "status": native["status"],
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "CP-IS", "display": CP_IS_DISPLAY}]}],
        "code": {"coding": [
            {"system": FLAG_CODE_SYSTEM, "code": FLAG_CODE, "display": "Child Protection Information System Flag"},
            {"system": CATEGORY_SYSTEM, "code": "CP-IS", "display": CP_IS_DISPLAY}
        ]},
        "subject": map::plan_patient(plan),
        "period": map::period(plan),
        "author": map::la_reference(la),
    })
}

/// A plan as an England-CarePlan-Flag, its care team the LA's CareTeam.
pub fn care_plan(plan: &Value, la: &Value, today: NaiveDate) -> Value {
    let status = match map::phase(plan, today) {
        Phase::InForce => "active",
        Phase::NotYetStarted => "draft",
        Phase::Ended | Phase::Finished => "completed",
        Phase::Cancelled => "revoked",
    };
    json!({
        "resourceType": "CarePlan",
        "id": map::str_at(plan, "/id"),
        "meta": meta(&[plan], "England-CarePlan-Flag"),
        "status": status,
        "intent": "plan",
        "category": [{"coding": [map::plan_type(plan)]}],
        "subject": map::plan_patient(plan),
        "period": map::period(plan),
        "careTeam": [{
            "reference": format!("CareTeam/{}", map::str_at(la, "/id")),
            "display": map::str_at(la, "/name")
        }],
    })
}

/// An LA as an England-CareTeam-Flag: its name and its contacts.
pub fn care_team(la: &Value) -> Value {
    let status = if la["active"] == false {
        "inactive"
    } else {
        "active"
    };
    json!({
        "resourceType": "CareTeam",
        "id": map::str_at(la, "/id"),
        "meta": meta(&[la], "England-CareTeam-Flag"),
        "status": status,
        "name": map::str_at(la, "/name"),
        "managingOrganization": [map::la_reference(la)],
        "telecom": map::phones(la),
    })
}

/// What a Flag search asks for besides the child.
struct Asked {
    /// Whether every Flag held can match its `code` and `category` (all are CP-IS flags).
    can_match: bool,
    care_plans: bool,
    care_teams: bool,
}

fn asked(others: &[(String, String)]) -> FhirResult<Asked> {
    let mut asked = Asked {
        can_match: true,
        care_plans: false,
        care_teams: false,
    };
    for (name, value) in others {
        match (name.as_str(), value.as_str()) {
            ("code", codes) => {
                asked.can_match &= token_matches(codes, FLAG_CODES);
                // Asked for by type: the flag with all its CP-IS details.
                asked.care_plans = true;
                asked.care_teams = true;
            }
            ("category", categories) => {
                asked.can_match &= token_matches(categories, FLAG_CATEGORIES)
            }
            // The forms the table lists (`query` refused any other).
            ("_include", _) => asked.care_plans = true,
            ("_include:iterate", _) => asked.care_teams = true,
            _ => {
                return Err(FhirError::UnknownParameter {
                    param: format!("{name}={value}"),
                })
            }
        }
    }
    Ok(asked)
}

/// `GET Flag?patient=…` (or `PatientFlag?…`): the native Flag search (recorded as it is), with
/// the CarePlans and CareTeams asked for.
#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type = "Flag"))]
async fn flag_search(r: Reading, req: HttpRequest) -> FhirResult<FhirResponse> {
    require_health_care(&r)?;
    let q = query::parse(req.query_string(), ViewSearch::Flag)?;
    let asked = asked(&q.others)?;
    let base = base(&r);
    let asked_type = req.path().rsplit('/').next().unwrap_or("Flag");
    if !asked.can_match {
        // Not a CP-IS flag (FGM, reasonable adjustments): none held, nothing disclosed.
        return Ok(searchset_of(&base, &req, asked_type, 0, Vec::new()));
    }
    let nhs = q.nhs.as_str().to_string();
    let native = SearchRequest::for_patient(ResourceType::Flag, q.nhs, MAX_COUNT);
    let (results, plans, now) = r
        .disclose(AccessKind::Search, move |conn, ctx| {
            let found = service::search::search(conn, ctx, &native)?;
            let plans = service::search::supporting_plans(conn, ctx, &nhs)?;
            let now = ctx.now_ms();
            Ok(found.map(|found| (found, plans, now)))
        })
        .await?;
    let today = uk_date(now);
    let (flags, las) = map::matches_and_includes(results.entries);
    let mut flagged: Vec<(Value, Value, Value)> = flags
        .into_iter()
        .filter_map(|native| {
            let plan = plans.iter().find(|p| p.get("id") == native.get("id"))?;
            let la = map::managing_la(plan, &las).cloned().unwrap_or_default();
            Some((native, plan.clone(), la))
        })
        .collect();
    map::newest_first(&mut flagged, |(_, plan, _)| plan);
    let mut entries: Vec<SearchEntry> = flagged
        .iter()
        .map(|(native, plan, la)| SearchEntry {
            resource: flag(native, plan, la),
            mode: "match",
        })
        .collect();
    if asked.care_plans {
        entries.extend(flagged.iter().map(|(_, plan, la)| SearchEntry {
            resource: care_plan(plan, la, today),
            mode: "include",
        }));
    }
    if asked.care_teams {
        let mut seen = Vec::new();
        for (_, _, la) in &flagged {
            if !seen.contains(&la["id"]) {
                seen.push(la["id"].clone());
                entries.push(SearchEntry {
                    resource: care_team(la),
                    mode: "include",
                });
            }
        }
    }
    let total = flagged.len() as i64;
    Ok(searchset_of(&base, &req, asked_type, total, entries))
}

/// `GET Flag/{id}` (or `PatientFlag/{id}`): the native Flag read (recorded as it is).
#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type = "Flag"))]
async fn flag_read(r: Reading, id: web::Path<String>) -> FhirResult<FhirResponse> {
    let read = read_plan(&r, ResourceType::Flag, id.into_inner()).await?;
    Ok(FhirResponse::ok(flag(&read.resource, &read.plan, &read.la)))
}

/// `GET CarePlan/{id}`: the native plan read (recorded as it is).
#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type = "CarePlan"))]
async fn care_plan_read(r: Reading, id: web::Path<String>) -> FhirResult<FhirResponse> {
    let read = read_plan(&r, ResourceType::EpisodeOfCare, id.into_inner()).await?;
    Ok(FhirResponse::ok(care_plan(
        &read.plan, &read.la, read.today,
    )))
}

/// `GET CareTeam/{id}`: an LA's contacts (the native Organization read: about no child, so
/// nothing is recorded).
#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type = "CareTeam"))]
async fn care_team_read(r: Reading, id: web::Path<String>) -> FhirResult<FhirResponse> {
    require_health_care(&r)?;
    let (_, la) = r
        .disclose(AccessKind::Read, move |conn, ctx| {
            service::read::read(conn, ctx, ResourceType::Organization, &id)
        })
        .await?;
    Ok(FhirResponse::ok(care_team(&la)))
}
