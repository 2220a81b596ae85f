//! An access's AuditEvent, rendered from its stored columns for the audience that reads it.

use serde_json::Value;

use crate::attendance::Summary;
use crate::auth::Identity;
use crate::db::audit::StoredAccess;
use crate::fhir::audit_event::{self, Access, AccessKind, Purpose};

/// The AuditEvent (JSON) of a stored access: rendered from its columns, or, for an access
/// recorded before they existed, the document kept then.
pub fn render(stored: &StoredAccess, audience: Audience<'_>) -> Result<String, String> {
    if !stored.content.is_empty() {
        return render_legacy(&stored.content, audience);
    }
    let who = Identity {
        sub: stored.agent_sub.clone(),
        role: stored.accessor_role.parse()?,
        name: stored.agent_name.clone(),
        org: (!stored.agent_org.is_empty()).then(|| stored.agent_org.clone()),
        org_name: stored.org_name.clone(),
        job_role: stored.job_role.clone(),
        job_role_code: stored.job_role_code.clone(),
    };
    let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
    let attendance = match (
        count(stored.attendances),
        count(stored.attendance_settings),
        count(stored.attendance_window_days),
        stored.attendance_pattern,
    ) {
        (Some(attendances), Some(settings), Some(window_days), Some(pattern)) => Some(Summary {
            attendances,
            settings,
            window_days,
            pattern,
            first: match audience {
                Audience::Whole => stored.pattern_reached,
                Audience::La { pattern_marked, .. } => pattern_marked,
            },
        }),
        _ => None,
    };
    let entities = references_for(&stored.entities, audience);
    Ok(audit_event::to_json(&Access {
        id: &stored.id,
        recorded_ms: stored.recorded_ms,
        subject: &stored.nhs_number,
        kind: AccessKind::from_interaction(&stored.interaction)
            .ok_or_else(|| format!("unknown interaction {:?}", stored.interaction))?,
        purpose: Purpose::from_stored(&stored.care_setting)
            .ok_or_else(|| format!("unknown care setting {:?}", stored.care_setting))?,
        who: &who,
        entities: &entities,
        observer: &stored.observer,
        attendance: attendance.as_ref(),
    }))
}

/// An access kept whole as a document (before accesses were columns): as it was for the
/// whole audience; for an LA without references, which named no LA then.
fn render_legacy(content: &str, audience: Audience<'_>) -> Result<String, String> {
    if audience == Audience::Whole {
        return Ok(content.to_string());
    }
    let mut event: Value = serde_json::from_str(content).map_err(|e| e.to_string())?;
    if let Some(entities) = event.get_mut("entity").and_then(Value::as_array_mut) {
        entities.retain(|e| e.pointer("/what/reference").is_none());
    }
    serde_json::to_string(&event).map_err(|e| e.to_string())
}

/// Who an AuditEvent is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// Health care and operations: every reference, the child's own attendance mark.
    Whole,
    /// One LA: references to its own plans only (never to another LA's, live, withdrawn or
    /// deleted), and the attendance mark as it was made for that LA.
    La { ods: &'a str, pattern_marked: bool },
}

/// The references an access shows to `audience`. An LA sees its own plans' references only;
/// one stored before references kept their LA is shown to no LA.
fn references_for(entities: &str, audience: Audience<'_>) -> Vec<String> {
    entities
        .split_whitespace()
        .filter_map(|entity| {
            let (reference, owner) = match entity.split_once('@') {
                Some((reference, owner)) => (reference, Some(owner)),
                None => (entity, None),
            };
            match audience {
                Audience::Whole => Some(reference.to_string()),
                Audience::La { ods, .. } => owner
                    .filter(|owner| owner.eq_ignore_ascii_case(ods))
                    .map(|_| reference.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::accesses::test_support::{nurse, pending};
    use crate::audit::PendingAccess;

    /// What the writer stored before accesses were kept as columns: the document itself.
    fn as_recorded(p: &PendingAccess, stamp: i64, attendance: Option<&Summary>) -> String {
        audit_event::to_json(&Access {
            id: &p.id,
            recorded_ms: stamp,
            subject: &p.subject,
            kind: p.kind,
            purpose: p.purpose,
            who: &p.who,
            entities: &p.entities,
            observer: &p.observer,
            attendance,
        })
    }

    #[test]
    fn a_stored_access_renders_exactly_the_audit_event_it_was_recorded_as() {
        let summary = Summary {
            attendances: 3,
            settings: 2,
            window_days: 30,
            pattern: true,
            first: true,
        };
        let cases = [
            (
                nurse(Some("RJ1"), true),
                AccessKind::Search,
                vec!["Flag/a", "EpisodeOfCare/a"],
                Some(summary),
            ),
            (
                nurse(None, false),
                AccessKind::Read,
                vec!["EpisodeOfCare/b"],
                None,
            ),
            (nurse(Some("RJ1"), false), AccessKind::History, vec![], None),
            (
                nurse(Some("RJ1"), true),
                AccessKind::VRead,
                vec!["Flag/c"],
                None,
            ),
        ];
        for (who, kind, entities, attendance) in cases {
            let p = pending(who, kind, &entities);
            let mut row = p.row(1_790_000_000_123).row;
            if let Some(a) = &attendance {
                row.attendances = Some(a.attendances as i32);
                row.attendance_settings = Some(a.settings as i32);
                row.attendance_window_days = Some(a.window_days as i32);
                row.attendance_pattern = Some(a.pattern);
                row.pattern_reached = a.first;
            }
            assert_eq!(
                render(&row, Audience::Whole).unwrap(),
                as_recorded(&p, 1_790_000_000_123, attendance.as_ref()),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn an_access_recorded_as_a_document_is_served_as_it_was_kept() {
        let row = StoredAccess {
            content: r#"{"resourceType":"AuditEvent","id":"old"}"#.into(),
            ..StoredAccess::default()
        };
        assert_eq!(render(&row, Audience::Whole).unwrap(), row.content);
    }

    #[test]
    fn a_stored_access_with_an_unknown_interaction_is_an_error_not_a_guess() {
        let mut row = pending(nurse(None, false), AccessKind::Read, &[])
            .row(1)
            .row;
        row.interaction = "patch".into();
        assert!(render(&row, Audience::Whole).is_err());
    }
}
