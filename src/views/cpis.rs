//! Design B: the CP-IS FHIR API (IG v1.0.0) at `{root}/cpis/FHIR/R4` (`NHS-COMPAT.md` §1).
//! `CareTeam` is a plan with its LA's contacts; `AuditEvent` is the child's access history, each
//! with the `PractitionerRole` of whoever looked.

use actix_web::{web, HttpRequest};
use serde_json::{json, Value};

use super::map::{self, Phase};
use super::{
    capability, get_only, query, read_plan, require_health_care, searchset_of, view_base, CPIS_PATH,
};
use crate::app::reading::Reading;
use crate::app::respond::FhirResponse;
use crate::clock::uk_date;
use crate::db;
use crate::error::FhirResult;
use crate::fhir::audit_event::{AccessKind, SDS_USER_SYSTEM};
use crate::fhir::bundle::SearchEntry;
use crate::fhir::types::ODS_SYSTEM;
use crate::fhir::ResourceType;
use crate::search::audit::AuditQuery;
use crate::search::params::{ViewSearch, MAX_COUNT};
use crate::search::SearchRequest;
use crate::service::{self, access_history};

const ROLE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metadata", web::get().to(metadata))
        .service(get_only("/CareTeam", care_team_search))
        .service(get_only("/CareTeam/{id}", care_team_read))
        .service(get_only("/AuditEvent", audit_event_search))
        // No read by id (NHS-COMPAT §13): every method 405, with an empty `Allow`.
        .service(crate::app::Endpoint::new("/AuditEvent/{id}").build());
}

fn base(r: &Reading) -> String {
    view_base(&r.state().base_url, CPIS_PATH)
}

async fn metadata(r: web::Data<crate::app::AppState>) -> FhirResponse {
    FhirResponse::ok(capability::cpis(&r.base_url, r.cors))
}

/// A plan health-care may see, as a CareTeam: the plan's type, period and child, its LA's name
/// and contacts (`NHS-COMPAT.md` §1.2). Nothing else of the plan.
pub fn care_team(plan: &Value, la: &Value, today: chrono::NaiveDate) -> Value {
    let status = match map::phase(plan, today) {
        Phase::InForce => "active",
        Phase::NotYetStarted => "proposed",
        Phase::Ended | Phase::Finished | Phase::Cancelled => "inactive",
    };
    json!({
        "resourceType": "CareTeam",
        "id": map::str_at(plan, "/id"),
        "meta": {"lastUpdated": map::last_updated(&[plan, la])},
        "status": status,
        "category": [{"coding": [map::plan_type(plan)]}],
        "name": map::str_at(la, "/name"),
        "subject": map::plan_patient(plan),
        "period": map::period(plan),
        "managingOrganization": [map::la_reference(la)],
        "telecom": map::phones(la),
    })
}

/// `GET CareTeam?patient:identifier=…`: the native plan search (recorded as it is).
#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type = "CareTeam"))]
async fn care_team_search(r: Reading, req: HttpRequest) -> FhirResult<FhirResponse> {
    require_health_care(&r)?;
    let q = query::parse(req.query_string(), ViewSearch::CareTeam)?;
    let native = SearchRequest::for_patient(ResourceType::EpisodeOfCare, q.nhs, MAX_COUNT);
    let (results, now) = r
        .disclose(AccessKind::Search, move |conn, ctx| {
            let now = ctx.now_ms();
            Ok(service::search::search(conn, ctx, &native)?.map(|found| (found, now)))
        })
        .await?;
    let (mut plans, las) = map::matches_and_includes(results.entries);
    map::newest_first(&mut plans, |plan| plan);
    let today = uk_date(now);
    let entries: Vec<SearchEntry> = plans
        .iter()
        .map(|plan| SearchEntry {
            resource: care_team(
                plan,
                map::managing_la(plan, &las).unwrap_or(&Value::Null),
                today,
            ),
            mode: "match",
        })
        .collect();
    let total = entries.len() as i64;
    Ok(searchset_of(&base(&r), &req, "CareTeam", total, entries))
}

/// `GET CareTeam/{id}`: the native plan read (recorded as it is).
#[tracing::instrument(skip_all, fields(fhir.interaction = "read", fhir.type = "CareTeam"))]
async fn care_team_read(r: Reading, id: web::Path<String>) -> FhirResult<FhirResponse> {
    let read = read_plan(&r, ResourceType::EpisodeOfCare, id.into_inner()).await?;
    Ok(FhirResponse::ok(care_team(
        &read.plan, &read.la, read.today,
    )))
}

/// A native AuditEvent as the guide has it: who (by reference to its PractitionerRole), when,
/// which child (`NHS-COMPAT.md` §1.3).
pub fn audit_event(event: &Value, base: &str) -> Value {
    let id = map::str_at(event, "/id");
    json!({
        "resourceType": "AuditEvent",
        "id": id,
        "meta": {"lastUpdated": event.pointer("/meta/lastUpdated")},
        "type": event["type"],
        "subtype": event["subtype"],
        "action": event["action"],
        "recorded": event["recorded"],
        "outcome": event["outcome"],
        "agent": [{
            "type": {"coding": [{"system": ROLE_CLASS, "code": "ASSIGNED", "display": "assigned entity"}]},
            "who": {"reference": format!("PractitionerRole/{id}"), "display": map::str_at(event, "/agent/0/who/display")},
            "requestor": true
        }],
        "source": {"observer": {"display": base}},
        "entity": [{"what": map::patient(map::str_at(event, "/entity/0/what/identifier/value"))}],
    })
}

/// The PractitionerRole of an access: the person and organisation as they were at that access,
/// from the token's claims (`NHS-COMPAT.md` §1.3).
pub fn practitioner_role(event: &Value) -> Value {
    let person = map::str_at(event, "/agent/0/who/display");
    let org = map::str_at(event, "/agent/1/who/identifier/value");
    let org_name = event
        .pointer("/agent/1/who/display")
        .and_then(Value::as_str)
        .unwrap_or(org);
    let mut role = json!({
        "resourceType": "PractitionerRole",
        "id": map::str_at(event, "/id"),
        "practitioner": {
            "identifier": {"system": SDS_USER_SYSTEM, "value": map::str_at(event, "/agent/0/who/identifier/value")},
            "display": person
        },
        "organization": {"identifier": {"system": ODS_SYSTEM, "value": org}, "display": org_name},
    });
    if let Some(job) = event.pointer("/agent/0/role/0") {
        let text = job.get("text").cloned().unwrap_or(Value::Null);
        let coding = match job.pointer("/coding/0") {
            Some(coding) => coding.clone(),
            None => json!({"display": text}),
        };
        if let (false, Some(obj)) = (text.is_null(), role.as_object_mut()) {
            obj.insert("code".into(), json!([{"coding": [coding], "text": text}]));
        }
    }
    role
}

/// `GET AuditEvent?patient:identifier=…`: the native access history (the search is itself an
/// access, as natively), each access with its PractitionerRole included.
#[tracing::instrument(skip_all, fields(fhir.interaction = "search-type", fhir.type = "AuditEvent"))]
async fn audit_event_search(r: Reading, req: HttpRequest) -> FhirResult<FhirResponse> {
    require_health_care(&r)?;
    // Any `_include` the guide lists: the PractitionerRoles are always included.
    let q = query::parse(req.query_string(), ViewSearch::AuditEvent)?;
    let history = AuditQuery::for_patient(q.nhs);
    let asked = history.clone();
    let plan = r
        .disclose(AccessKind::Search, move |conn, ctx| {
            access_history::prepare(conn, ctx, &asked)
        })
        .await?;
    let (events, total) = db::run(&r.state().pool, move |conn| {
        access_history::page(conn, &plan, &history)
    })
    .await?;
    let base = base(&r);
    let mut entries: Vec<SearchEntry> = events
        .iter()
        .map(|e| SearchEntry {
            resource: audit_event(e, &base),
            mode: "match",
        })
        .collect();
    entries.extend(events.iter().map(|e| SearchEntry {
        resource: practitioner_role(e),
        mode: "include",
    }));
    Ok(searchset_of(&base, &req, "AuditEvent", total, entries))
}
