//! `Reading`: the verified caller, the application and the care setting an audited read is
//! made from, the start of every audited read handler (the native API's and the views'). A
//! handler asks the service for a disclosure through `Reading::disclose`, which hands back the
//! data once the accesses it makes are committed (SPEC §3 AuditEvent).

use futures_util::future::LocalBoxFuture;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use super::AppState;
use crate::audit::{AccessContext, Disclosed, Reader};
use crate::auth::Caller;
use crate::db::DbConn;
use crate::error::{FhirError, FhirResult};
use crate::fhir::audit_event::{AccessKind, CareSetting, CARE_SETTING_HEADER};
use crate::fhir::ResourceType;

/// An audited read about to be made: the application, the verified caller and the care
/// setting it reads from (`IsUnscheduledAccessEvent`).
pub struct Reading {
    state: web::Data<AppState>,
    caller: Caller,
    care_setting: CareSetting,
    ty: Option<ResourceType>,
}

impl FromRequest for Reading {
    type Error = FhirError;
    type Future = LocalBoxFuture<'static, Result<Reading, FhirError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = authenticated(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let (caller, state) = authenticated.await?;
            Ok(Reading {
                state,
                caller,
                care_setting: care_setting(&req)?,
                ty: super::resource_type(&req).ok(),
            })
        })
    }
}

/// The verified caller and the application state, for an extractor that needs both.
pub(crate) fn authenticated(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl std::future::Future<Output = FhirResult<(Caller, web::Data<AppState>)>> {
    let caller = Caller::from_request(req, payload);
    let state = web::Data::<AppState>::extract(req).into_inner();
    async move {
        let caller = caller.await?;
        let state = state.map_err(|_| FhirError::internal("no application state"))?;
        Ok((caller, state))
    }
}

impl Reading {
    /// The stored type the route serves.
    pub fn ty(&self) -> FhirResult<ResourceType> {
        self.ty
            .ok_or_else(|| FhirError::internal("a stored-type read on another route"))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Runs `read` on the pool as this caller, now, and hands over what it disclosed once the
    /// accesses it makes are committed: nothing is shown that was not recorded.
    pub async fn disclose<T, F>(&self, kind: AccessKind, read: F) -> FhirResult<T>
    where
        F: FnOnce(&mut DbConn, &AccessContext) -> FhirResult<Disclosed<T>> + Send + 'static,
        T: Send + 'static,
    {
        let reader = Reader {
            caller: self.caller.clone(),
            kind,
            care_setting: self.care_setting,
            now_ms: self.state.clock.now_ms(),
            observer: self.state.base_url.clone(),
        };
        self.state
            .auditor
            .disclosing(&self.state.pool, reader, read)
            .await
    }
}

/// A header as text (trimmed), absent or not; one that is not visible ASCII is 400.
pub fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, FhirError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| FhirError::BadHeader {
                header: name.into(),
                reason: "not visible ASCII".into(),
            }),
    }
}

/// `IsUnscheduledAccessEvent`: the care setting of an access (absent = unscheduled); any
/// value but true/false is 400 `PRECONDITION_FAILED`.
pub fn care_setting(req: &HttpRequest) -> Result<CareSetting, FhirError> {
    let value = header_str(req, CARE_SETTING_HEADER)?;
    CareSetting::from_header(value).map_err(|reason| FhirError::BadHeader {
        header: CARE_SETTING_HEADER.into(),
        reason,
    })
}
