//! NHS England's CP-IS APIs as read-only views over the data the server holds
//! (`NHS-COMPAT.md`): the CP-IS FHIR API (design B, `cpis`) at `{root}/cpis/FHIR/R4`, and the
//! Patient Flag API (design C, `patient_flag`) at `{root}/patient-flags-api/FHIR/R4`, so an EPR
//! built to either guide changes only the host of its base URL.
//!
//! Every view reads through the native services and `Reading::disclose`: its searches and reads
//! are recorded, collapsed and notified exactly as the native ones, and what they return is
//! mapped from the native resources by the pure functions of `map`, `cpis` and `patient_flag`.

pub mod capability;
pub mod cpis;
pub mod map;
pub mod outcome;
pub mod patient_flag;
pub mod query;

use actix_web::{middleware::from_fn, web, HttpRequest};

use serde_json::Value;

use crate::app::negotiate::negotiate;
use crate::app::reading::Reading;
use crate::app::respond::FhirResponse;
use crate::auth::Action;
use crate::db::DbConn;
use crate::error::{FhirError, FhirResult};
use crate::fhir::audit_event::AccessKind;
use crate::fhir::bundle::{searchset, SearchEntry};
use crate::fhir::ResourceType;
use crate::service;

/// Where each view is served, under the server's root (its base URL without `/FHIR/R4`).
pub const CPIS_PATH: &str = "/cpis/FHIR/R4";
pub const PATIENT_FLAG_PATH: &str = "/patient-flags-api/FHIR/R4";

/// Whether the views are served (`CPIS_NHS_VIEWS`, on unless set off), as application data:
/// off, their scopes match nothing and their paths fall to the native 404.
#[derive(Debug, Clone, Copy)]
pub struct Served(pub bool);

fn served(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    ctx.app_data::<Served>().is_none_or(|served| served.0)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, routes) in [
        (CPIS_PATH, cpis::routes as fn(&mut web::ServiceConfig)),
        (PATIENT_FLAG_PATH, patient_flag::routes),
    ] {
        cfg.service(
            web::scope(path)
                .guard(actix_web::guard::fn_guard(served))
                .wrap(from_fn(outcome::nhs_shaped))
                .wrap(from_fn(negotiate))
                .configure(routes)
                .default_service(web::to(outcome::not_served)),
        );
    }
}

/// A read-only route: GET only, anything else 405.
fn get_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    crate::app::Endpoint::new(path)
        .get(handler)
        .or_else(outcome::read_only)
}

/// A view's base URL: the native base with its `/FHIR/R4` replaced by the view's path.
pub fn view_base(native_base: &str, path: &str) -> String {
    let root = native_base.strip_suffix("/FHIR/R4").unwrap_or(native_base);
    format!("{root}{path}")
}

/// A view's searchset: one page, its `self` link the request's URL at the view's base.
pub fn searchset_of(
    base: &str,
    req: &HttpRequest,
    ty: &str,
    total: i64,
    entries: Vec<SearchEntry>,
) -> FhirResponse {
    FhirResponse::ok(searchset(
        base,
        total,
        entries,
        self_link(base, req, ty),
        None,
    ))
}

/// The plan with this id and the Organization of its LA, recording nothing: what supports a
/// read of the plan (or of its Flag, which has its id) that records the access itself.
fn plan_and_la(
    conn: &mut DbConn,
    ctx: &crate::audit::AccessContext,
    id: &str,
) -> FhirResult<(Value, Value)> {
    let plan = service::read::supporting(conn, ctx, ResourceType::EpisodeOfCare, id)?
        .ok_or_else(|| FhirError::internal("a plan read but not found"))?;
    let ods = map::str_at(&plan, "/managingOrganization/identifier/value").to_string();
    let la = service::organization::la_resource(conn, &ods)?.unwrap_or_default();
    Ok((plan, la))
}

/// What a recorded read of a plan (or of its Flag, `ty`) shows: the resource read, the plan
/// and its LA's Organization, and today (the UK date) for their status.
pub struct PlanRead {
    pub resource: Value,
    pub plan: Value,
    pub la: Value,
    pub today: chrono::NaiveDate,
}

/// Reads a plan or a Flag through the native read (recorded, as natively), with its plan and LA.
pub async fn read_plan(r: &Reading, ty: ResourceType, id: String) -> FhirResult<PlanRead> {
    require_health_care(r)?;
    r.disclose(AccessKind::Read, move |conn, ctx| {
        let read = service::read::read(conn, ctx, ty, &id)?;
        let (plan, la) = plan_and_la(conn, ctx, &id)?;
        let today = crate::clock::uk_date(ctx.now_ms());
        Ok(read.map(|(_, resource)| PlanRead {
            resource,
            plan,
            la,
            today,
        }))
    })
    .await
}

/// The request's URL at the view's base (a searchset's `self` link).
fn self_link(base: &str, req: &HttpRequest, ty: &str) -> String {
    let params = url::form_urlencoded::parse(req.query_string().as_bytes());
    crate::fhir::bundle::search_link(base, ty, params)
}

/// The views are NHS consumer APIs: health-care only. LAs and operations keep the native API.
pub fn require_health_care(r: &Reading) -> FhirResult<()> {
    if r.caller().may(Action::UseNhsViews) {
        Ok(())
    } else {
        Err(FhirError::Forbidden(outcome::ACCESS_DENIED.into()))
    }
}
