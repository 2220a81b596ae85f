//! The viewer's pages: askama templates (`templates/viewer/`), compiled and checked at build.
//! Every template is HTML-escaped: askama escapes by file extension unless told, so each
//! derive says `escape = "html"`, and no template marks anything `safe` (a unit test reads
//! them). Errors are pages too (`Failure`), never a stack trace.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::assets::STYLESHEET;
use super::lookup::Outcome;
use crate::error::FhirError;

/// What every page shares: where the viewer is, and who is signed in.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The server's root path (the base URL's path without `/FHIR/R4`), usually empty.
    pub root: String,
    pub stylesheet: &'static str,
    pub user: Option<SignedIn>,
}

impl Layout {
    pub fn new(root: &str, user: Option<SignedIn>) -> Layout {
        Layout {
            root: root.to_string(),
            stylesheet: STYLESHEET,
            user,
        }
    }
}

/// The signed-in user, as the header shows them, with the form token of **Sign out**.
#[derive(Debug, Clone, Default)]
pub struct SignedIn {
    pub name: String,
    pub organisation: String,
    pub csrf: String,
}

/// A field's error: its element id (the summary links to it) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors.iter().find(|e| e.field == field).map(|e| e.message)
}

/// An option of the sandbox's role list.
#[derive(Debug, Clone)]
pub struct RoleOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "viewer/sign_in.html", escape = "html")]
pub struct SignInPage {
    pub layout: Layout,
    pub csrf: String,
    pub errors: Vec<FieldError>,
    pub name: String,
    pub ods: String,
    pub job_role: String,
    pub roles: Vec<RoleOption>,
}

impl SignInPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "viewer/find.html", escape = "html")]
pub struct FindPage {
    pub layout: Layout,
    pub csrf: String,
    pub errors: Vec<FieldError>,
    pub nhs_number: String,
    pub visit: String,
}

impl FindPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "viewer/result.html", escape = "html")]
pub struct ResultPage {
    pub layout: Layout,
    pub outcome: Outcome,
}

/// A link under a message.
#[derive(Debug, Clone)]
pub struct Link {
    pub href: String,
    pub text: &'static str,
}

/// A page that says one thing: signed out, refused, not found, unavailable.
#[derive(Template)]
#[template(path = "viewer/message.html", escape = "html")]
pub struct MessagePage {
    pub layout: Layout,
    pub title: &'static str,
    pub lines: Vec<String>,
    pub link: Option<Link>,
}

/// A rendered page with its status. A template that fails to render is the 500 page.
pub fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "viewer page not rendered");
            Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "").error_response()
        }
    }
}

/// A refusal or fault, answered as a page (`ResponseError`): what the user can do, never
/// what went wrong inside.
#[derive(Debug, Clone)]
pub struct Failure {
    status: StatusCode,
    root: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "viewer page {}", self.status.as_u16())
    }
}

impl Failure {
    pub fn new(status: StatusCode, root: &str) -> Failure {
        Failure {
            status,
            root: root.to_string(),
        }
    }

    pub fn forbidden(root: &str) -> Failure {
        Self::new(StatusCode::FORBIDDEN, root)
    }

    /// The page of a service error: a database outage or a full audit queue is 503 (nothing
    /// was shown: an access that cannot be recorded is not made), anything else 500.
    pub fn from_service(e: &FhirError, root: &str) -> Failure {
        let status = match e {
            FhirError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            FhirError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status != StatusCode::FORBIDDEN {
            // The service's own words, which name no child (an NHS number has no Display).
            tracing::error!(status = status.as_u16(), error = %e, "viewer request failed");
        }
        Self::new(status, root)
    }

    fn message(&self) -> MessagePage {
        let home = Some(Link {
            href: format!("{}/viewer", self.root),
            text: "Go to Find a child",
        });
        let (title, lines, link) = match self.status {
            StatusCode::FORBIDDEN => (
                "You cannot use this service",
                vec![
                    "The viewer is for health care staff. Your role cannot view child protection information here, or your form had expired: go back and try again.".to_string(),
                ],
                home,
            ),
            StatusCode::NOT_FOUND => (
                "Page not found",
                vec!["If you typed the web address, check it is correct.".to_string()],
                home,
            ),
            StatusCode::TOO_MANY_REQUESTS => (
                "Too many attempts",
                vec!["Wait a minute, then try again.".to_string()],
                home,
            ),
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST => (
                "Sorry, we could not read that form",
                vec!["Go back and try again.".to_string()],
                home,
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                "Sorry, the service is unavailable",
                vec![
                    "Nothing was shown and nothing was recorded. Try again in a few minutes.".to_string(),
                    "If you have an urgent concern about a child, phone the local authority.".to_string(),
                ],
                None,
            ),
            _ => (
                "Sorry, there is a problem with the service",
                vec![
                    "Try again later.".to_string(),
                    "If you have an urgent concern about a child, phone the local authority.".to_string(),
                ],
                None,
            ),
        };
        MessagePage {
            layout: Layout::new(&self.root, None),
            title,
            lines,
            link,
        }
    }
}

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        match self.message().render() {
            Ok(body) => HttpResponse::build(self.status)
                .content_type("text/html; charset=utf-8")
                .body(body),
            Err(_) => HttpResponse::build(self.status)
                .content_type("text/plain; charset=utf-8")
                .body("Sorry, there is a problem with the service."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viewer::lookup::{Card, Pattern, Phone, View};

    const HOSTILE: &str = "<script>alert(1)</script>\"'&";

    fn hostile_layout() -> Layout {
        Layout::new(
            "",
            Some(SignedIn {
                name: HOSTILE.into(),
                organisation: HOSTILE.into(),
                csrf: HOSTILE.into(),
            }),
        )
    }

    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"'&"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
    }

    #[test]
    fn every_page_escapes_what_it_is_given() {
        let card = Card {
            kind: HOSTILE.into(),
            description: HOSTILE.into(),
            start: HOSTILE.into(),
            end: Some(HOSTILE.into()),
            not_yet_started: false,
            la_name: HOSTILE.into(),
            la_ods: HOSTILE.into(),
            office_hours: Some(Phone {
                shown: HOSTILE.into(),
                tel: HOSTILE.into(),
            }),
            emergency_duty: Some(Phone {
                shown: HOSTILE.into(),
                tel: HOSTILE.into(),
            }),
        };
        let view = View {
            when: HOSTILE.into(),
            viewer: HOSTILE.into(),
            job_role: HOSTILE.into(),
            organisation: HOSTILE.into(),
        };
        let outcome = Outcome {
            nhs_number: HOSTILE.into(),
            looked_up: HOSTILE.into(),
            unscheduled: true,
            current: vec![card.clone()],
            ended: vec![card],
            views: vec![view],
            pattern: Some(Pattern::default()),
        };
        let pages = [
            ResultPage {
                layout: hostile_layout(),
                outcome,
            }
            .render(),
            FindPage {
                layout: hostile_layout(),
                csrf: HOSTILE.into(),
                errors: vec![FieldError {
                    field: "nhs-number",
                    message: "Enter a valid NHS number",
                }],
                nhs_number: HOSTILE.into(),
                visit: HOSTILE.into(),
            }
            .render(),
            SignInPage {
                layout: hostile_layout(),
                csrf: HOSTILE.into(),
                errors: Vec::new(),
                name: HOSTILE.into(),
                ods: HOSTILE.into(),
                job_role: HOSTILE.into(),
                roles: Vec::new(),
            }
            .render(),
            MessagePage {
                layout: hostile_layout(),
                title: "Title",
                lines: vec![HOSTILE.into()],
                link: None,
            }
            .render(),
        ];
        for page in pages {
            assert_escaped(&page.unwrap_or_default());
        }
    }

    #[test]
    fn no_template_turns_escaping_off() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/viewer");
        let entries = std::fs::read_dir(&dir).map(|d| d.flatten().collect::<Vec<_>>());
        let entries = entries.unwrap_or_default();
        assert!(entries.len() >= 5, "the templates are found");
        for entry in entries {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for marker in ["|safe", "| safe", "escape(", "autoescape"] {
                assert!(!text.contains(marker), "{:?}: {marker}", entry.path());
            }
            assert!(
                entry.path().extension().is_some_and(|e| e == "html"),
                "{:?}",
                entry.path()
            );
        }
        let source = include_str!("pages.rs");
        let derives = source.matches(concat!("#[tem", "plate(path")).count();
        assert_eq!(
            derives,
            source.matches("escape = \"html\")]").count(),
            "every template is escaped"
        );
    }
}
