//! The AuditEvent document of an access, serialised straight from borrowed fields.

use serde::Serialize;

use super::{
    profile, Access, AccessKind, Purpose, ATTENDANCE_EXTENSION, SDS_JOB_ROLE_SYSTEM,
    SDS_USER_SYSTEM,
};
use crate::attendance::Summary;
use crate::auth::Identity;
use crate::fhir::types::{instant, NHS_NUMBER_SYSTEM, ODS_SYSTEM};

impl Purpose {
    /// `entity[0]`: the identifier system of what was accessed, and its detail.
    fn subject(self) -> (&'static str, Detail) {
        match self {
            Purpose::Care(setting) => (
                NHS_NUMBER_SYSTEM,
                Detail {
                    kind: "care-setting",
                    value_string: setting.as_str(),
                },
            ),
            Purpose::Report(report) => (
                report.subject_system(),
                Detail {
                    kind: "report",
                    value_string: report.as_str(),
                },
            ),
        }
    }
}

/// The AuditEvent as JSON text, serialised straight from borrowed fields (it is built on
/// every audited lookup). Only who, when, their role and organisation, and which child: no
/// clinical detail (SPEC §1).
pub fn to_json(access: &Access<'_>) -> String {
    serde_json::to_string(&document(access)).unwrap_or_default()
}

fn document<'a>(access: &'a Access<'a>) -> AuditEventDoc<'a> {
    let who = access.who;
    let subtype = access.kind.interaction();
    let action = if access.kind == AccessKind::Search {
        "E"
    } else {
        "R"
    };
    let display = who.name.as_deref().unwrap_or(&who.sub);
    let recorded = instant(access.recorded_ms);
    let mut agent = vec![Agent {
        role: job_role(who),
        who: AgentWho {
            identifier: Identifier {
                system: SDS_USER_SYSTEM,
                value: &who.sub,
            },
            display: Some(display),
        },
        name: Some(display),
        requestor: true,
    }];
    if let Some(org) = &who.org {
        agent.push(Agent {
            role: None,
            who: AgentWho {
                identifier: Identifier {
                    system: ODS_SYSTEM,
                    value: org,
                },
                display: who.org_name.as_deref(),
            },
            name: None,
            requestor: false,
        });
    }
    let (system, detail) = access.purpose.subject();
    let mut entity = vec![Entity {
        what: What::Child {
            identifier: Identifier {
                system,
                value: access.subject,
            },
        },
        detail: Some([detail]),
    }];
    entity.extend(access.entities.iter().map(|reference| Entity {
        what: What::Resource { reference },
        detail: None,
    }));
    AuditEventDoc {
        resource_type: "AuditEvent",
        id: access.id,
        extension: access.attendance.map(|a| [attendance_extension(a)]),
        meta: Meta {
            version_id: "1",
            last_updated: recorded.clone(),
            profile: [profile()],
        },
        kind: Coding {
            system: "http://terminology.hl7.org/CodeSystem/audit-event-type",
            code: "rest",
            display: None,
        },
        subtype: [Coding {
            system: "http://hl7.org/fhir/restful-interaction",
            code: subtype,
            display: None,
        }],
        action,
        recorded,
        outcome: "0",
        agent,
        source: Source {
            observer: Observer {
                display: access.observer,
            },
        },
        entity,
    }
}

/// The summary as a complex extension: attendances, settings and the window (days) as
/// unsignedInt, whether it is a pattern, and whether this access first reached it.
fn attendance_extension(a: &Summary) -> Extension {
    let count = |url: &'static str, n: u32| Part {
        url,
        value_unsigned_int: Some(n),
        value_boolean: None,
    };
    let flag = |url: &'static str, b: bool| Part {
        url,
        value_unsigned_int: None,
        value_boolean: Some(b),
    };
    Extension {
        url: ATTENDANCE_EXTENSION,
        extension: [
            count("attendances", a.attendances),
            count("settings", a.settings),
            count("windowDays", a.window_days),
            flag("pattern", a.pattern),
            flag("patternReached", a.first),
        ],
    }
}

#[derive(Serialize)]
struct Extension {
    url: &'static str,
    extension: [Part; 5],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    url: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_unsigned_int: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_boolean: Option<bool>,
}

/// `role[0]`: the job role's text, with its SDS coding when a code was given.
fn job_role(who: &Identity) -> Option<[Role<'_>; 1]> {
    if who.job_role.is_none() && who.job_role_code.is_none() {
        return None;
    }
    Some([Role {
        text: who.job_role.as_deref(),
        coding: who.job_role_code.as_deref().map(|code| {
            [Coding {
                system: SDS_JOB_ROLE_SYSTEM,
                code,
                display: who.job_role.as_deref(),
            }]
        }),
    }])
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditEventDoc<'a> {
    resource_type: &'static str,
    id: &'a str,
    meta: Meta,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<[Extension; 1]>,
    #[serde(rename = "type")]
    kind: Coding<'a>,
    subtype: [Coding<'a>; 1],
    action: &'static str,
    recorded: String,
    outcome: &'static str,
    agent: Vec<Agent<'a>>,
    source: Source<'a>,
    entity: Vec<Entity<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    version_id: &'static str,
    last_updated: String,
    profile: [String; 1],
}

#[derive(Serialize)]
struct Coding<'a> {
    system: &'static str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

#[derive(Serialize)]
struct Identifier<'a> {
    system: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct Agent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<[Role<'a>; 1]>,
    who: AgentWho<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    requestor: bool,
}

#[derive(Serialize)]
struct Role<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    coding: Option<[Coding<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

#[derive(Serialize)]
struct AgentWho<'a> {
    identifier: Identifier<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

#[derive(Serialize)]
struct Source<'a> {
    observer: Observer<'a>,
}

#[derive(Serialize)]
struct Observer<'a> {
    display: &'a str,
}

#[derive(Serialize)]
struct Entity<'a> {
    what: What<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<[Detail; 1]>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum What<'a> {
    Child { identifier: Identifier<'a> },
    Resource { reference: &'a str },
}

#[derive(Serialize)]
struct Detail {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "valueString")]
    value_string: &'static str,
}
