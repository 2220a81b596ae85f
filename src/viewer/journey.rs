//! **Find a child** and its result (SPEC §10): the form (`GET /viewer`), the search (`POST
//! /viewer`: checked, looked up, kept in the session, redirected) and the result
//! (`GET /viewer/result`, read from the session: a refresh records nothing again).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::lookup::{self, Outcome};
use super::pages::{page, Failure, FieldError, FindPage, Layout, ResultPage};
use super::request::{
    cookie, db, require_session, see_other, session_form, set_cookie, signed_in, Signed,
};
use super::session::{self as sessions, Session};
use super::{launch, Viewer};
use crate::app::AppState;
use crate::fhir::audit_event::CareSetting;
use crate::fhir::nhs_number::NhsNumber;

const NHS_NUMBER_ERROR: &str = "Enter a valid 10 digit NHS number";
const VISIT_ERROR: &str = "Select why the patient is being seen today";

fn find_page(
    viewer: &Viewer,
    session: &Session,
    errors: Vec<FieldError>,
    nhs_number: String,
    visit: String,
) -> FindPage {
    FindPage {
        layout: Layout::new(&viewer.root, Some(signed_in(session))),
        csrf: session.csrf.clone(),
        errors,
        nhs_number,
        visit,
    }
}

/// `GET /viewer`: the form, empty (no answer chosen).
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let session = match require_session(&req, &state, &viewer).await? {
        Signed::In(session) => session,
        Signed::Out(redirect) => return Ok(redirect),
    };
    // An EPR launch waiting for this browser fills in the NHS number (never the visit
    // question); one picked up before stays filled in until the search.
    let launched = launch::picked_up(&req, &state, &viewer, &session.token_hash).await?;
    let spent = launched.is_some() || cookie(&req, launch::COOKIE).is_some();
    let nhs_number = launched.or_else(|| session.launch_nhs.clone());
    let mut res = page(
        StatusCode::OK,
        &find_page(
            &viewer,
            &session,
            Vec::new(),
            nhs_number.unwrap_or_default(),
            String::new(),
        ),
    );
    if spent {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&viewer, launch::COOKIE, None),
        );
    }
    Ok(res)
}

/// What the form asked, once it is valid.
fn checked(nhs_number: &str, visit: &str) -> Result<(NhsNumber, CareSetting), Vec<FieldError>> {
    let digits: String = nhs_number.chars().filter(|c| *c != ' ').collect();
    let nhs = NhsNumber::parse(&digits);
    let setting = match visit {
        "unscheduled" => Some(CareSetting::Unscheduled),
        "scheduled" => Some(CareSetting::Scheduled),
        _ => None,
    };
    match (nhs, setting) {
        (Ok(nhs), Some(setting)) => Ok((nhs, setting)),
        (nhs, setting) => {
            let mut errors = Vec::new();
            if nhs.is_err() {
                errors.push(FieldError {
                    field: "nhs-number",
                    message: NHS_NUMBER_ERROR,
                });
            }
            if setting.is_none() {
                errors.push(FieldError {
                    field: "visit-unscheduled",
                    message: VISIT_ERROR,
                });
            }
            Err(errors)
        }
    }
}

/// `POST /viewer`: the lookup. Invalid: the form again with its errors, nothing recorded.
/// Valid: looked up (recorded as the API's lookup), kept in the session, and redirected to
/// the result, whose address holds nothing about the child.
pub async fn search(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let root = viewer.root.clone();
    let (session, form) = match session_form(&req, payload, &state, &viewer).await? {
        Signed::In(signed) => signed,
        Signed::Out(redirect) => return Ok(redirect),
    };
    let now = state.clock.now_ms();
    if !viewer
        .limits
        .searches
        .allow(&session.token_hash, viewer.searches_per_minute, now)
    {
        return Err(Failure::new(StatusCode::TOO_MANY_REQUESTS, &root));
    }
    let (nhs_number, visit) = (form.text("nhs_number"), form.text("visit"));
    let (nhs, setting) = match checked(&nhs_number, &visit) {
        Ok(asked) => asked,
        Err(errors) => {
            return Ok(page(
                StatusCode::BAD_REQUEST,
                &find_page(&viewer, &session, errors, nhs_number, visit),
            ))
        }
    };
    let outcome = lookup::look_up(&state, session.caller.clone(), nhs, setting)
        .await
        .map_err(|e| Failure::from_service(&e, &root))?;
    let kept = serde_json::to_string(&outcome)
        .map_err(|e| Failure::from_service(&crate::error::FhirError::internal(e), &root))?;
    let key = session.token_hash.clone();
    db(&state, &viewer, move |conn| {
        sessions::keep_result(conn, &key, &kept)
    })
    .await?;
    Ok(see_other(&viewer, "/result"))
}

/// `GET /viewer/result`: the last lookup's result, as kept in the session.
pub async fn result(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: web::Data<Viewer>,
) -> Result<HttpResponse, Failure> {
    let session = match require_session(&req, &state, &viewer).await? {
        Signed::In(session) => session,
        Signed::Out(redirect) => return Ok(redirect),
    };
    let Some(outcome) = session
        .result
        .as_deref()
        .and_then(|kept| serde_json::from_str::<Outcome>(kept).ok())
    else {
        return Ok(see_other(&viewer, ""));
    };
    Ok(page(
        StatusCode::OK,
        &ResultPage {
            layout: Layout::new(&viewer.root, Some(signed_in(&session))),
            outcome,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_needs_a_valid_number_and_an_answer() {
        assert!(checked("944 930 6753", "unscheduled").is_ok());
        assert!(checked("9449306753", "scheduled").is_ok());
        let fields = |r: Result<(NhsNumber, CareSetting), Vec<FieldError>>| {
            r.err()
                .unwrap_or_default()
                .iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(checked("9449306754", "unscheduled")), ["nhs-number"]);
        assert_eq!(fields(checked("9449306753", "")), ["visit-unscheduled"]);
        assert_eq!(
            fields(checked("", "yes")),
            ["nhs-number", "visit-unscheduled"]
        );
    }
}
