//! Signing in and out (SPEC §10). With `CPIS_SANDBOX=1` and no issuer, sign-in is the sandbox
//! form (**Name**, **Organisation ODS code**, **Job role**, **Sign in**): whoever the user says
//! they are, as a health-care caller unless the sandbox role list says otherwise (to see the
//! refusal). With `CPIS_VIEWER_OIDC_ISSUER` and its client set, sign-in is OpenID Connect
//! (`oidc`): the page sends the browser to the provider. Only a caller the policy lets use the viewer
//! (`Action::UseViewer`: health care) gets a session; anyone else the 403 page.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::pages::{page, Failure, FieldError, Layout, Link, MessagePage, RoleOption, SignInPage};
use super::request::{
    client_address, cookie, db, read_form, see_other, session, session_form, set_cookie, Signed,
};
use super::settings::SignIn;
use super::{csrf, limits, oidc, session as sessions, Viewer};
use crate::app::AppState;
use crate::auth::Identity;
use crate::auth::{Action, Caller, Role};

/// The sandbox's roles: health care first (the default).
const ROLES: [(Role, &str); 4] = [
    (Role::HealthCare, "Health care"),
    (Role::SocialCare, "Social care"),
    (Role::Operations, "Operations"),
    (Role::Governance, "Governance"),
];

const LONGEST: usize = 100;

/// What the sandbox form was given.
struct Entered {
    name: String,
    ods: String,
    job_role: String,
    role: String,
}

fn roles(selected: &str) -> Vec<RoleOption> {
    ROLES
        .iter()
        .map(|(role, label)| RoleOption {
            value: role.as_str(),
            label,
            selected: role.as_str() == selected,
        })
        .collect()
}

fn form_page(
    viewer: &Viewer,
    csrf: String,
    errors: Vec<FieldError>,
    entered: Entered,
) -> SignInPage {
    SignInPage {
        layout: Layout::new(&viewer.root, None),
        csrf,
        errors,
        name: entered.name,
        ods: entered.ods,
        job_role: entered.job_role,
        roles: roles(&entered.role),
    }
}

/// The page of a configuration that signs nobody in with the form.
fn not_available(viewer: &Viewer, how: SignIn) -> HttpResponse {
    let lines = match how {
        SignIn::OidcNotBuilt => vec![
            "This server is set up to sign you in with your organisation's identity provider (OpenID Connect, CPIS_VIEWER_OIDC_ISSUER).".to_string(),
            "OpenID Connect sign-in is not yet available in this build of the settings: no client is set for the provider (CPIS_VIEWER_OIDC_CLIENT_ID), so nobody can sign in to the viewer here yet.".to_string(),
        ],
        SignIn::Oidc | SignIn::Sandbox | SignIn::None => vec![
            "Sign-in to the viewer is not set up on this server.".to_string(),
        ],
    };
    page(
        StatusCode::NOT_IMPLEMENTED,
        &MessagePage {
            layout: Layout::new(&viewer.root, None),
            title: "Sign-in is not available",
            lines,
            link: None,
        },
    )
}

/// `GET /viewer/sign-in`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let how = viewer.config.sign_in();
    if let (SignIn::Oidc, Some(oidc)) = (how, &viewer.oidc) {
        return oidc::start(&req, &state, &viewer, oidc).await;
    }
    if how != SignIn::Sandbox {
        return Ok(not_available(&viewer, how));
    }
    if session(&req, &state, &viewer).await?.is_some() {
        return Ok(see_other(&viewer, ""));
    }
    let token = sessions::random_token();
    let mut res = page(
        StatusCode::OK,
        &form_page(
            &viewer,
            token.clone(),
            Vec::new(),
            Entered {
                name: String::new(),
                ods: String::new(),
                job_role: String::new(),
                role: Role::HealthCare.as_str().to_string(),
            },
        ),
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&viewer, csrf::SIGN_IN_COOKIE, Some(&token)),
    );
    Ok(res)
}

/// Text a person typed: trimmed, not empty, not too long, no control characters.
fn text_ok(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= LONGEST && !value.chars().any(char::is_control)
}

fn ods_ok(value: &str) -> bool {
    (3..=12).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The sandbox's user id for a name: the same name signs in as the same person (so their
/// repeated views collapse as one person's do).
fn sandbox_sub(name: &str) -> String {
    let hash = sessions::hash(&name.to_lowercase());
    format!("sandbox-{}", hash.get(..16).unwrap_or_default())
}

/// The identity the form names, or the fields to correct.
fn identity(entered: &Entered) -> Result<Identity, Vec<FieldError>> {
    let mut errors = Vec::new();
    if !text_ok(&entered.name) {
        errors.push(FieldError {
            field: "name",
            message: "Enter your name",
        });
    }
    if !ods_ok(&entered.ods) {
        errors.push(FieldError {
            field: "ods",
            message: "Enter your organisation's ODS code, like RJ1",
        });
    }
    if !text_ok(&entered.job_role) {
        errors.push(FieldError {
            field: "job-role",
            message: "Enter your job role",
        });
    }
    let chosen = entered.role.parse::<Role>();
    if chosen.is_err() {
        errors.push(FieldError {
            field: "role",
            message: "Choose a role",
        });
    }
    match chosen {
        Ok(role) if errors.is_empty() => Ok(Identity {
            sub: sandbox_sub(&entered.name),
            role,
            name: Some(entered.name.clone()),
            org: Some(entered.ods.to_ascii_uppercase()),
            org_name: None,
            job_role: Some(entered.job_role.clone()),
            job_role_code: None,
        }),
        _ => Err(errors),
    }
}

/// `POST /viewer/sign-in`: the sandbox form. Its form token must match its cookie; attempts
/// are limited per client address and per name; a valid health-care identity gets a session
/// and goes to **Find a child**.
pub async fn sign_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let root = viewer.root.clone();
    let how = viewer.config.sign_in();
    if how == SignIn::Oidc {
        // Nothing to post: sign-in is at the identity provider.
        return Ok(see_other(&viewer, "/sign-in"));
    }
    if how != SignIn::Sandbox {
        return Ok(not_available(&viewer, how));
    }
    let form = read_form(payload, &root).await?;
    let expected = cookie(&req, csrf::SIGN_IN_COOKIE).unwrap_or_default();
    if !csrf::matches(&expected, form.get(csrf::FIELD)) {
        return Err(Failure::forbidden(&root));
    }
    let now = state.clock.now_ms();
    let entered = Entered {
        name: form.text("name").trim().to_string(),
        ods: form.text("ods").trim().to_string(),
        job_role: form.text("job_role").trim().to_string(),
        role: form.get("role").unwrap_or("health-care").to_string(),
    };
    let by_address = viewer.limits.sign_in_address.allow(
        &client_address(&req),
        limits::SIGN_IN_PER_ADDRESS,
        now,
    );
    let by_user = viewer.limits.sign_in_user.allow(
        &entered.name.to_lowercase(),
        limits::SIGN_IN_PER_USER,
        now,
    );
    if !by_address || !by_user {
        return Err(Failure::new(StatusCode::TOO_MANY_REQUESTS, &root));
    }
    let who = match identity(&entered) {
        Ok(who) => who,
        Err(errors) => {
            return Ok(page(
                StatusCode::BAD_REQUEST,
                &form_page(&viewer, expected, errors, entered),
            ))
        }
    };
    start_session(&state, &viewer, who, now, csrf::SIGN_IN_COOKIE).await
}

/// The end of either sign-in (the sandbox form, the OpenID Connect callback): only a role that
/// may use the viewer gets a session (else the 403 page); its cookie is set, the sign-in's own
/// cookie (`spent`) cleared, and the browser sent to Find a child.
pub(super) async fn start_session(
    state: &AppState,
    viewer: &Viewer,
    who: Identity,
    now: i64,
    spent: &str,
) -> Result<HttpResponse, Failure> {
    if !Caller(who.clone()).may(Action::UseViewer) {
        return Err(Failure::forbidden(&viewer.root));
    }
    let (token, _) = db(state, viewer, move |conn| sessions::create(conn, &who, now)).await?;
    let mut res = see_other(viewer, "");
    let headers = res.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(viewer, sessions::COOKIE, Some(&token)),
    );
    headers.append(header::SET_COOKIE, set_cookie(viewer, spent, None));
    Ok(res)
}

/// `POST /viewer/sign-out`: ends the session (its row deleted) and clears the cookie.
pub async fn sign_out(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let session = match session_form(&req, payload, &state, &viewer).await? {
        Signed::In((session, _)) => session,
        Signed::Out(redirect) => return Ok(redirect),
    };
    let key = session.token_hash.clone();
    db(&state, &viewer, move |conn| sessions::end(conn, &key)).await?;
    let mut res = see_other(&viewer, "/signed-out");
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&viewer, sessions::COOKIE, None),
    );
    Ok(res)
}

/// `GET /viewer/signed-out`.
pub async fn signed_out(viewer: web::Data<Viewer>) -> HttpResponse {
    page(
        StatusCode::OK,
        &MessagePage {
            layout: Layout::new(&viewer.root, None),
            title: "You have signed out",
            lines: vec!["Close the browser window if you have finished.".to_string()],
            link: Some(Link {
                href: format!("{}/viewer/sign-in", viewer.root),
                text: "Sign in again",
            }),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entered(name: &str, ods: &str, job_role: &str, role: &str) -> Entered {
        Entered {
            name: name.into(),
            ods: ods.into(),
            job_role: job_role.into(),
            role: role.into(),
        }
    }

    #[test]
    fn the_sandbox_form_names_a_caller() {
        let who = identity(&entered("Jane Smith", "rj1", "Staff Nurse", "health-care"));
        let who = who.ok().unwrap_or_else(|| panic!("a valid form"));
        assert_eq!(who.org.as_deref(), Some("RJ1"));
        assert_eq!(who.role, Role::HealthCare);
        assert_eq!(who.sub, sandbox_sub("jane smith"));
        let errors = identity(&entered("", "R J1", "a\u{7}", "admin")).err();
        let fields: Vec<&str> = errors.unwrap_or_default().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "ods", "job-role", "role"]);
    }
}
