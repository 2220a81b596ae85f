//! The headers of every viewer response (SPEC §10): a Content-Security-Policy that allows no
//! script at all (the viewer has none) and no framing unless `CPIS_VIEWER_FRAME_ANCESTORS`
//! lists origins, `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`, and
//! `Cache-Control: no-store` on every page (only the versioned stylesheet may be kept).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use super::Viewer;

/// The policy: nothing but the viewer's own stylesheet and forms.
pub fn content_security_policy(frame_ancestors: &[String]) -> String {
    let ancestors = if frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        frame_ancestors.join(" ")
    };
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

pub async fn secure(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let csp = req
        .app_data::<web::Data<Viewer>>()
        .map(|viewer| viewer.csp.clone())
        .unwrap_or_else(|| content_security_policy(&[]));
    let framed = req
        .app_data::<web::Data<Viewer>>()
        .is_some_and(|viewer| !viewer.config.frame_ancestors.is_empty());
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !framed {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_script_and_framing_only_by_listed_origins() {
        let none = content_security_policy(&[]);
        assert!(none.contains("default-src 'none'"));
        assert!(!none.contains("script-src"));
        assert!(!none.contains("unsafe-inline"));
        assert!(none.ends_with("frame-ancestors 'none'"));
        let listed = content_security_policy(&["https://epr.example".into()]);
        assert!(listed.ends_with("frame-ancestors https://epr.example"));
    }
}
