//! The `Caller` extractor: a handler that takes a `Caller` is authenticated.

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::identity::Identity;
use super::jwt::Verifier;
use super::policy::{allows, Action, Role};
use crate::error::FhirError;

#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

/// Who called, as the request log shows it (`telemetry::observe`): the role and the
/// organisation's ODS code (an organisation, never a person). Kept on the request once its
/// token is verified.
#[derive(Debug, Clone)]
pub struct CallerNote {
    pub role: &'static str,
    pub org: Option<String>,
}

impl Caller {
    pub fn role(&self) -> Role {
        self.0.role
    }

    /// The caller's organisation ODS code (always present for social-care and health-care).
    pub fn org(&self) -> Option<&str> {
        self.0.org.as_deref()
    }

    /// Whether the caller's role may perform `action`.
    pub fn may(&self, action: Action) -> bool {
        allows(self.0.role, action)
    }

    /// Fails with 403 unless the caller's role may perform `action`.
    pub fn require(&self, action: Action) -> Result<(), FhirError> {
        if allows(self.0.role, action) {
            Ok(())
        } else {
            Err(FhirError::Forbidden(format!(
                "the {} role may not perform {action:?}",
                self.0.role.as_str()
            )))
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Result<&str, FhirError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| FhirError::Unauthenticated("missing Authorization header".into()))?
        .to_str()
        .map_err(|_| FhirError::Unauthenticated("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| FhirError::Unauthenticated("expected a Bearer token".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(FhirError::Unauthenticated("expected a Bearer token".into()));
    }
    Ok(token.trim())
}

impl FromRequest for Caller {
    type Error = FhirError;
    type Future = LocalBoxFuture<'static, Result<Caller, FhirError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        let token = bearer_token(req).map(str::to_string);
        let req = req.clone();
        Box::pin(async move {
            let verifier =
                verifier.ok_or_else(|| FhirError::internal("no JWT verifier configured"))?;
            let identity = verifier
                .verify(&token?)
                .await
                .map_err(FhirError::Unauthenticated)?;
            tracing::Span::current().record("caller.role", identity.role.as_str());
            req.extensions_mut().insert(CallerNote {
                role: identity.role.as_str(),
                org: identity.org.clone(),
            });
            Ok(Caller(identity))
        })
    }
}
