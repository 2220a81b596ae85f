//! What the write handlers of the stored types share: `Writing` (a write about to be made,
//! and its answer), the id rule of an update, and `$validate`'s parameters and answer.

use futures_util::future::LocalBoxFuture;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use serde_json::Value;

use super::extract::{if_match, prefer, FhirBody};
use crate::app::respond::FhirResponse;
use crate::app::AppState;
use crate::auth::{Action, Caller};
use crate::db::{self, DbConn};
use crate::error::{information_outcome, operation_outcome, FhirError, FhirResult, Issue};
use crate::fhir::ResourceType;
use crate::service::{self, Written};
use crate::validation::Profiles;

/// A write about to be made: the application, the request and the verified caller.
pub struct Writing {
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
}

impl FromRequest for Writing {
    type Error = FhirError;
    type Future = LocalBoxFuture<'static, Result<Writing, FhirError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = crate::app::reading::authenticated(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let (caller, state) = authenticated.await?;
            Ok(Writing { state, req, caller })
        })
    }
}

impl Writing {
    /// Fails with 403 unless the caller's role may perform `action` (checked before the body
    /// is looked at, so a caller who may not write learns nothing from validation).
    pub fn require(&self, action: Action) -> FhirResult<()> {
        self.caller.require(action)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn req(&self) -> &HttpRequest {
        &self.req
    }

    /// An update's parts, checked: the URL's id, the body (which must carry that id, FHIR's
    /// rule for PUT) and the version `If-Match` names.
    pub fn update_parts(
        &self,
        ty: ResourceType,
        id: web::Path<String>,
        body: FhirBody,
    ) -> FhirResult<(String, Value, Option<i64>)> {
        let id = id.into_inner();
        let resource = body.resource(ty.as_str())?;
        check_body_id(&resource, &id)?;
        Ok((id, resource, if_match(&self.req)?))
    }

    /// `$validate` may be asked: the caller's role may validate, and its parameters are known.
    pub fn validating(&self, ty: ResourceType) -> FhirResult<()> {
        self.require(Action::Validate)?;
        check_validate_params(&self.req, ty)
    }

    /// Runs `work` on the pool as this caller, now.
    pub async fn run<T, F>(self, work: F) -> FhirResult<T>
    where
        F: FnOnce(&mut DbConn, &Caller, i64) -> FhirResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let now = self.state.clock.now_ms();
        let caller = self.caller;
        db::run(&self.state.pool, move |conn| work(conn, &caller, now)).await
    }

    /// Runs a create or update and answers it: 201 with Location when created, else 200,
    /// honouring `Prefer`.
    pub async fn respond<F>(self, write: F) -> FhirResult<FhirResponse>
    where
        F: FnOnce(&mut DbConn, &Caller, i64) -> FhirResult<Written> + Send + 'static,
    {
        let (state, req) = (self.state.clone(), self.req.clone());
        let w = self.run(write).await?;
        written(&state, &req, w)
    }
}

/// The answer to a create or update: 201 with Location when created, else 200.
fn written(state: &AppState, req: &HttpRequest, w: Written) -> FhirResult<FhirResponse> {
    let status = if w.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body: Value = service::parse_content(&w.row)?;
    let location = format!(
        "{}/{}/{}/_history/{}",
        state.base_url, w.row.resource_type, w.row.id, w.row.version_id
    );
    Ok(FhirResponse::resource(status, &w.row, body)
        .with_location(location)
        .prefer(prefer(req)))
}

/// FHIR: a PUT body carries the id of the URL.
fn check_body_id(resource: &Value, id: &str) -> FhirResult<()> {
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => Ok(()),
        Some(body_id) => Err(FhirError::Unparseable(format!(
            "the body's id {body_id:?} does not match the URL's id {id:?}"
        ))),
        None => Err(FhirError::Unparseable(
            "an update body must carry the resource id".into(),
        )),
    }
}

/// `$validate`'s parameters: only `profile` (this server's profile of the type) and `_format`.
fn check_validate_params(req: &HttpRequest, ty: ResourceType) -> FhirResult<()> {
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match name.as_ref() {
            "profile" if value == Profiles::canonical(ty.as_str()) => {}
            "profile" => {
                return Err(FhirError::InvalidSearch {
                    param: "profile".into(),
                    reason: format!("{value:?} is not this server's profile for {}", ty.as_str()),
                })
            }
            "_format" => {}
            _ => {
                return Err(FhirError::UnknownParameter {
                    param: name.into_owned(),
                })
            }
        }
    }
    Ok(())
}

/// `$validate`'s answer: 200 with the errors, or one information issue when there are none.
pub fn validation_outcome(issues: &[Issue]) -> FhirResponse {
    if issues.is_empty() {
        FhirResponse::ok(information_outcome("the resource is valid"))
    } else {
        FhirResponse::ok(operation_outcome(issues, "error"))
    }
}
