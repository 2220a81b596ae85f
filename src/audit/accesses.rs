//! Which accesses a read makes (pure): one per child among the plans and flags it returns,
//! each as the writer receives it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth::Identity;
use crate::auth::Recording;
use crate::db::audit::{NewAccess, StoredAccess};
use crate::fhir::audit_event::{AccessKind, CareSetting, Purpose, Report};
use crate::fhir::organization::referenced_ods;
use crate::fhir::ResourceType;

use super::disclosure::{Reader, Returned};

/// One access to one child, as a request hands it to the writer: everything its AuditEvent
/// says but the instant it is recorded, which the writer stamps.
#[derive(Debug, Clone)]
pub struct PendingAccess {
    pub(super) id: String,
    pub(super) requested_ms: i64,
    /// The child's NHS number, or what a governance report was about.
    pub(super) subject: String,
    pub(super) kind: AccessKind,
    pub(super) purpose: Purpose,
    pub(super) who: Identity,
    pub(super) entities: Vec<String>,
    pub(super) observer: String,
    /// The LAs whose plans were returned.
    pub(super) la_ods: Vec<String>,
}

impl PendingAccess {
    /// The row to store, recorded at `stamp`; the writer adds what is decided under its lock
    /// (where it is shown, the attendance summary).
    pub(super) fn row(&self, stamp: i64) -> NewAccess {
        let who = &self.who;
        NewAccess {
            row: StoredAccess {
                id: self.id.clone(),
                recorded_ms: stamp,
                nhs_number: self.subject.clone(),
                agent_sub: who.sub.clone(),
                agent_org: who.org.clone().unwrap_or_default(),
                care_setting: self.purpose.as_stored().to_string(),
                accessor_role: who.role.as_str().to_string(),
                interaction: self.kind.interaction().to_string(),
                agent_name: who.name.clone(),
                org_name: who.org_name.clone(),
                job_role: who.job_role.clone(),
                job_role_code: who.job_role_code.clone(),
                observer: self.observer.clone(),
                entities: self.entities.join(" "),
                ..StoredAccess::default()
            },
            reportable: who.role.recording() == Recording::Clinical
                && self.purpose == Purpose::Care(CareSetting::Unscheduled),
            la_ods: self.la_ods.clone(),
        }
    }
}

/// The accesses a request makes: one per child among the plans and flags it returns. Only
/// health-care accesses (shown and notified when unscheduled) and operations' reads of plans
/// (governance only) are recorded; an LA reading its own plans is not an access.
pub(super) fn read(ctx: &Reader, returned: &[Returned<'_>]) -> Vec<PendingAccess> {
    if ctx.caller.role().recording() == Recording::NotAnAccess {
        return Vec::new();
    }
    let mut children: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for r in returned {
        let (Some(nhs), Some(id)) = (child_of(r), r.content.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let (refs, las) = children.entry(nhs).or_default();
        let owner = owner_of(r);
        let reference = owned_reference(&format!("{}/{id}", r.ty.as_str()), owner.as_deref());
        if !refs.contains(&reference) {
            refs.push(reference);
        }
        if let Some(la) = owner {
            if !las.contains(&la) {
                las.push(la);
            }
        }
    }
    children
        .into_iter()
        .map(|(nhs, (refs, las))| access(ctx, nhs, &refs, las))
        .collect()
}

/// The access of an access-history search for a child who has plans (of `las`): nothing but
/// the child is referenced.
pub(super) fn history(ctx: &Reader, nhs: &str, las: Vec<String>) -> Vec<PendingAccess> {
    if ctx.caller.role().recording() == Recording::NotAnAccess {
        return Vec::new();
    }
    vec![access(ctx, nhs.to_string(), &[], las)]
}

/// The governance access of a report search about `subject`: recorded for operations to
/// list, never shown in a history, notified, counted or reported.
pub(super) fn report(ctx: &Reader, report: Report, subject: &str) -> PendingAccess {
    let mut access = access(ctx, subject.to_string(), &[], Vec::new());
    access.purpose = Purpose::Report(report);
    access
}

fn access(ctx: &Reader, nhs: String, refs: &[String], las: Vec<String>) -> PendingAccess {
    PendingAccess {
        // Time-ordered ids: the id indexes grow at their end instead of at random pages.
        id: uuid::Uuid::now_v7().to_string(),
        requested_ms: ctx.now_ms,
        subject: nhs,
        kind: ctx.kind,
        purpose: Purpose::Care(ctx.care_setting),
        who: ctx.caller.0.clone(),
        entities: refs.to_vec(),
        observer: ctx.observer.clone(),
        la_ods: las,
    }
}

/// A returned plan or Flag as its access keeps it: the reference and, after `@`, the LA that
/// holds it, so that an LA is shown only references to its own plans (ids never hold `@`).
fn owned_reference(reference: &str, owner: Option<&str>) -> String {
    match owner {
        Some(la) => format!("{reference}@{la}"),
        None => reference.to_string(),
    }
}

fn child_of(r: &Returned<'_>) -> Option<String> {
    let reference = match r.ty {
        ResourceType::EpisodeOfCare => r.content.get("patient"),
        ResourceType::Flag => r.content.get("subject"),
        ResourceType::Organization => None,
    }?;
    reference
        .pointer("/identifier/value")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn owner_of(r: &Returned<'_>) -> Option<String> {
    match r.ty {
        ResourceType::EpisodeOfCare => referenced_ods(r.content.get("managingOrganization")),
        ResourceType::Flag => referenced_ods(r.content.get("author")),
        ResourceType::Organization => None,
    }
}

#[cfg(test)]
pub(super) mod test_support {
    use super::*;

    pub(in crate::audit) fn nurse(org: Option<&str>, job_role: bool) -> Identity {
        Identity {
            sub: "555021935107".into(),
            role: crate::auth::Role::HealthCare,
            name: Some("Jane Smith".into()),
            org: org.map(str::to_string),
            org_name: org.map(|_| "St Thomas' Hospital".to_string()),
            job_role: job_role.then(|| "Staff Nurse".to_string()),
            job_role_code: job_role.then(|| "R8001".to_string()),
        }
    }

    pub(in crate::audit) fn pending(
        who: Identity,
        kind: AccessKind,
        entities: &[&str],
    ) -> PendingAccess {
        PendingAccess {
            id: "0193a1c4-0000-7000-8000-000000000001".into(),
            requested_ms: 1_790_000_000_000,
            subject: "9449306753".into(),
            kind,
            purpose: Purpose::Care(CareSetting::Unscheduled),
            who,
            entities: entities.iter().map(|e| e.to_string()).collect(),
            observer: "https://cpis.example.org/FHIR/R4".into(),
            la_ods: las(&["E09000030"]),
        }
    }

    pub(in crate::audit) fn las(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| c.to_string()).collect()
    }
}
