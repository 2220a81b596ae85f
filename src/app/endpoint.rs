//! `Endpoint`: a path and the methods it serves, built together so the `Allow` header of its
//! 405s (RFC 9110 §15.5.6) is always the list of what it serves. `HEAD` is served wherever
//! `GET` is (`normalise` answers it as a GET without the body), so it is listed with it.
//!
//! A create (`POST [base]/[type]`, and the upload `POST [base]`) is declared with `create`: it
//! takes no parameters but `_format` and `_pretty`, so a client that meant a conditional create
//! (and should have sent `If-None-Exist`) gets a 400, not a second resource.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{
    web, FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError,
};

use crate::error::FhirError;

/// The methods a path serves, as its `Allow` header says them (set by `Endpoint`).
#[derive(Debug, Clone)]
pub struct Allowed(pub String);

impl Allowed {
    /// The `Allow` value of the route `req` was routed to (empty where nothing is served).
    pub fn of(req: &HttpRequest) -> String {
        req.app_data::<Allowed>()
            .map(|allowed| allowed.0.clone())
            .unwrap_or_default()
    }
}

pub struct Endpoint {
    resource: Resource,
    methods: Vec<Method>,
}

impl Endpoint {
    pub fn new(path: &str) -> Self {
        Endpoint {
            resource: web::resource(path),
            methods: Vec::new(),
        }
    }

    /// Serves `method` with `handler`.
    pub fn route<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::GET, handler)
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::POST, handler)
    }

    /// Serves `POST` as a create: any query parameter but `_format`/`_pretty` is 400.
    pub fn create<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::post()
            .to(handler)
            .wrap(actix_web::middleware::from_fn(no_search_parameters));
        self.resource = self.resource.route(route);
        self.methods.push(Method::POST);
        self
    }

    pub fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PUT, handler)
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::DELETE, handler)
    }

    /// Data the handlers of this path share (e.g. the stored type it serves).
    pub fn app_data<T: 'static>(mut self, data: T) -> Self {
        self.resource = self.resource.app_data(data);
        self
    }

    /// The path's resource: any method it does not serve goes to `other` (405 by default).
    pub fn or_else<F, Args>(self, other: F) -> Resource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let allow = allow_header(&self.methods);
        self.resource
            .app_data(Allowed(allow))
            .default_service(web::to(other))
    }

    /// The path's resource: any method it does not serve is 405 with `Allow`.
    pub fn build(self) -> Resource {
        self.or_else(method_not_allowed)
    }
}

/// `GET, HEAD, POST`: the methods in the order served, `HEAD` after `GET`.
fn allow_header(methods: &[Method]) -> String {
    methods
        .iter()
        .flat_map(|m| {
            let head = (m == Method::GET).then_some(Method::HEAD);
            std::iter::once(m.clone()).chain(head)
        })
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A method the path does not serve: 405 with the path's `Allow`.
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(FhirError::MethodNotAllowed {
        ty: req
            .app_data::<crate::fhir::ResourceType>()
            .map_or("this endpoint", |ty| ty.as_str())
            .to_string(),
        interaction: req.method().to_string(),
        allow: Allowed::of(&req),
    })
}

async fn no_search_parameters(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match create_parameters_check(req.query_string()) {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
}

fn create_parameters_check(query: &str) -> Result<(), FhirError> {
    match url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .find(|name| !matches!(name.as_ref(), "_format" | "_pretty"))
    {
        Some(name) => Err(FhirError::InvalidSearch {
            param: name.to_string(),
            reason: "a create takes no search parameters (for a conditional create, send them \
                     in If-None-Exist)"
                .into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_takes_only_format_parameters() {
        assert!(create_parameters_check("").is_ok());
        assert!(create_parameters_check("_format=json&_pretty=true").is_ok());
        assert!(create_parameters_check("identifier=x|1").is_err());
    }

    #[test]
    fn head_is_allowed_wherever_get_is() {
        assert_eq!(
            allow_header(&[Method::GET, Method::PUT, Method::DELETE]),
            "GET, HEAD, PUT, DELETE"
        );
        assert_eq!(allow_header(&[Method::POST]), "POST");
        assert_eq!(allow_header(&[]), "");
    }
}
