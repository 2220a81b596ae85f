//! What every viewer handler needs from a request: its cookies, its form (read with a small
//! limit, so an oversized one is a page too), the signed-in session, and the answers it
//! sends (redirects, cookies).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::pages::{Failure, SignedIn};
use super::session::{self, Session};
use super::{csrf, Viewer};
use crate::app::AppState;
use crate::auth::Action;

/// The most a viewer form may hold.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// A cookie's value, if the request carries it.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// A urlencoded form's fields.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A field's value, or empty.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }
}

/// Reads a urlencoded form body of at most `MAX_FORM_BYTES` (else the 413 page).
pub async fn read_form(mut payload: web::Payload, root: &str) -> Result<Form, Failure> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Failure::new(StatusCode::BAD_REQUEST, root))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(Failure::new(StatusCode::PAYLOAD_TOO_LARGE, root));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Form(
        url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    ))
}

/// The signed-in session of this request, if any (an expired one is deleted and is none). A
/// session of a role that may not use the viewer is refused with the 403 page.
pub async fn session(
    req: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
) -> Result<Option<Session>, Failure> {
    let Some(token) = cookie(req, session::COOKIE) else {
        return Ok(None);
    };
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let now = state.clock.now_ms();
    let found = crate::db::run(&state.pool, move |conn| session::open(conn, &token, now))
        .await
        .map_err(|e| Failure::from_service(&e, &viewer.root))?;
    match found {
        Some(s) if !s.caller.may(Action::UseViewer) => Err(Failure::forbidden(&viewer.root)),
        found => Ok(found),
    }
}

/// Where a request that needs a session goes: on with it, or (none) to sign-in.
pub enum Signed<T> {
    In(T),
    Out(HttpResponse),
}

/// The request's session, or the redirect to sign-in.
pub async fn require_session(
    req: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
) -> Result<Signed<Session>, Failure> {
    Ok(match session(req, state, viewer).await? {
        Some(found) => Signed::In(found),
        None => Signed::Out(see_other(viewer, "/sign-in")),
    })
}

/// A signed-in POST: its session and its form, whose token must be the session's (else the
/// 403 page, and nothing is done).
pub async fn session_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    viewer: &Viewer,
) -> Result<Signed<(Session, Form)>, Failure> {
    let found = match require_session(req, state, viewer).await? {
        Signed::In(found) => found,
        Signed::Out(redirect) => return Ok(Signed::Out(redirect)),
    };
    let form = read_form(payload, &viewer.root).await?;
    if !csrf::matches(&found.csrf, form.get(csrf::FIELD)) {
        return Err(Failure::forbidden(&viewer.root));
    }
    Ok(Signed::In((found, form)))
}

/// Runs database work off the workers (`db::run`); a failure is its page.
pub async fn db<T, F>(state: &AppState, viewer: &Viewer, work: F) -> Result<T, Failure>
where
    F: FnOnce(&mut crate::db::DbConn) -> Result<T, crate::error::FhirError> + Send + 'static,
    T: Send + 'static,
{
    crate::db::run(&state.pool, work)
        .await
        .map_err(|e| Failure::from_service(&e, &viewer.root))
}

/// The header's view of a session's user.
pub fn signed_in(session: &Session) -> SignedIn {
    let who = &session.caller.0;
    let org = who.org.clone().unwrap_or_default();
    SignedIn {
        name: who.name.clone().unwrap_or_else(|| who.sub.clone()),
        organisation: match &who.org_name {
            Some(name) => format!("{name} ({org})"),
            None => org,
        },
        csrf: session.csrf.clone(),
    }
}

/// `303 See Other` to a viewer path (post-redirect-get; no personal data in any location).
pub fn see_other(viewer: &Viewer, path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{}/viewer{path}", viewer.root)))
        .finish()
}

/// A cookie of the viewer's (`Path=/viewer`, HttpOnly, SameSite=Lax, Secure unless served
/// over plain http on loopback); `None` clears it.
pub fn set_cookie(viewer: &Viewer, name: &str, value: Option<&str>) -> HeaderValue {
    let secure = if viewer.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text = match value {
        Some(value) => format!(
            "{name}={value}; Path={}/viewer; HttpOnly; SameSite=Lax{secure}",
            viewer.root
        ),
        None => format!(
            "{name}=; Path={}/viewer; HttpOnly; SameSite=Lax{secure}; Max-Age=0",
            viewer.root
        ),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's address, as the connection shows it (never a forwarded header a client
/// could write).
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "cpis_viewer_sign_in=a; cpis_viewer=b"))
            .to_http_request();
        assert_eq!(cookie(&req, "cpis_viewer").as_deref(), Some("b"));
        assert_eq!(cookie(&req, "cpis_viewer_sign_in").as_deref(), Some("a"));
        assert_eq!(cookie(&req, "other"), None);
    }
}
