//! read, vread and instance history for every stored type, with each type's access rules:
//! an LA sees only its own plans and flags; health-care never sees withdrawn
//! (entered-in-error) plans; Flags show today's status.

use serde_json::Value;

use super::{parse_content, require_live};
use crate::audit::{AccessContext, Disclosed, Returned};
use crate::auth::{Action, Caller};
use crate::db::models::ResourceRow;
use crate::db::{store, DbConn};
use crate::error::FhirError;
use crate::fhir::organization::referenced_ods;
use crate::fhir::{flag, ResourceType};

/// The action needed to read a type at all.
pub fn read_action(ty: ResourceType) -> Action {
    match ty {
        ResourceType::Organization => Action::ReadOrganization,
        ResourceType::EpisodeOfCare | ResourceType::Flag => Action::ReadPlan,
    }
}

/// The ODS code of the LA that owns a plan or flag.
pub fn owner_ods(ty: ResourceType, content: &Value) -> Option<String> {
    match ty {
        ResourceType::EpisodeOfCare => referenced_ods(content.get("managingOrganization")),
        ResourceType::Flag => referenced_ods(content.get("author")),
        ResourceType::Organization => None,
    }
}

fn is_withdrawn(content: &Value) -> bool {
    content.get("status").and_then(Value::as_str) == Some("entered-in-error")
}

/// Checks that `caller` may see this resource, and renders it for them. A plan is its LA's (and
/// operations') to see, history included; for health-care a deleted plan is gone (410) and a
/// withdrawn (entered-in-error) one does not exist (404), whichever version is asked for.
fn visible(
    caller: &Caller,
    ty: ResourceType,
    row: &ResourceRow,
    now: i64,
) -> Result<Value, FhirError> {
    let mut content = parse_content(row)?;
    if let Some(ods) = owner_ods(ty, &content) {
        caller.la_scope().admit(&ods)?;
        if !caller.role().sees_withdrawn_plans() {
            if row.deleted {
                return Err(FhirError::Gone {
                    ty: ty.as_str().into(),
                    id: row.id.clone(),
                });
            }
            if is_withdrawn(&content) {
                return Err(FhirError::NotFound {
                    ty: ty.as_str().into(),
                    id: row.id.clone(),
                });
            }
        }
    }
    if ty == ResourceType::Flag {
        flag::render(&mut content, now);
    }
    Ok(content)
}

/// A stored resource's row, live or deleted; none is 404.
fn existing(
    row: Option<ResourceRow>,
    ty: ResourceType,
    id: &str,
) -> Result<ResourceRow, FhirError> {
    row.ok_or_else(|| FhirError::NotFound {
        ty: ty.as_str().into(),
        id: id.into(),
    })
}

/// The current content of a live resource, recording nothing: for what supports a disclosure
/// that records the child's access itself (a plan's LA, the plan behind a Flag).
pub(crate) fn supporting(
    conn: &mut DbConn,
    _within: &AccessContext,
    ty: ResourceType,
    id: &str,
) -> Result<Option<Value>, FhirError> {
    store::current(conn, ty.as_str(), id)?
        .filter(|row| !row.deleted)
        .map(|row| parse_content(&row))
        .transpose()
}

/// A resource as `ctx.caller` may see it, with the access that seeing it makes.
pub fn read(
    conn: &mut DbConn,
    ctx: &AccessContext,
    ty: ResourceType,
    id: &str,
) -> Result<Disclosed<(ResourceRow, Value)>, FhirError> {
    let caller = ctx.caller();
    caller.require(read_action(ty))?;
    let row = existing(store::current(conn, ty.as_str(), id)?, ty, id)?;
    // Whose it is comes before whether it is still there: another LA's deleted plan is 403.
    let content = visible(caller, ty, &row, ctx.now_ms())?;
    let row = require_live(Some(row), ty, id)?;
    Ok(disclosed_one(ctx, ty, row, content))
}

fn disclosed_one(
    ctx: &AccessContext,
    ty: ResourceType,
    row: ResourceRow,
    content: Value,
) -> Disclosed<(ResourceRow, Value)> {
    let accesses = ctx.accesses(&[Returned {
        ty,
        content: &content,
    }]);
    Disclosed::with((row, content), accesses)
}

pub fn vread(
    conn: &mut DbConn,
    ctx: &AccessContext,
    ty: ResourceType,
    id: &str,
    version: i64,
) -> Result<Disclosed<(ResourceRow, Value)>, FhirError> {
    let (caller, now) = (ctx.caller(), ctx.now_ms());
    caller.require(read_action(ty))?;
    // Access is judged on the current version: who owns the plan now.
    let current = existing(store::current(conn, ty.as_str(), id)?, ty, id)?;
    visible(caller, ty, &current, now)?;
    require_live(Some(current), ty, id)?;
    let row = store::version(conn, ty.as_str(), id, version)?.ok_or_else(|| {
        FhirError::VersionNotFound {
            ty: ty.as_str().into(),
            id: id.into(),
            version: version.to_string(),
        }
    })?;
    if row.deleted {
        return Err(FhirError::Gone {
            ty: ty.as_str().into(),
            id: id.into(),
        });
    }
    let mut content = parse_content(&row)?;
    if ty == ResourceType::Flag {
        flag::render(&mut content, now);
    }
    Ok(disclosed_one(ctx, ty, row, content))
}

/// Every version, newest first; a deleted version has no resource.
pub type Versions = Vec<(ResourceRow, Option<Value>)>;

/// The history of a resource as `ctx.caller` may see it, with the access it makes.
pub fn history(
    conn: &mut DbConn,
    ctx: &AccessContext,
    ty: ResourceType,
    id: &str,
) -> Result<Disclosed<Versions>, FhirError> {
    let (caller, now) = (ctx.caller(), ctx.now_ms());
    caller.require(read_action(ty))?;
    let current = existing(store::current(conn, ty.as_str(), id)?, ty, id)?;
    // A deleted plan's history is still its LA's to see (judged by its last content).
    visible(caller, ty, &current, now)?;
    let versions = store::history(conn, ty.as_str(), id)?
        .into_iter()
        .map(|row| {
            if row.deleted {
                return Ok((row, None));
            }
            let mut content = parse_content(&row)?;
            if ty == ResourceType::Flag {
                flag::render(&mut content, now);
            }
            Ok((row, Some(content)))
        })
        .collect::<Result<Versions, FhirError>>()?;
    let returned: Vec<Returned<'_>> = versions
        .iter()
        .filter_map(|(_, content)| content.as_ref().map(|content| Returned { ty, content }))
        .collect();
    let accesses = ctx.accesses(&returned);
    Ok(Disclosed::with(versions, accesses))
}
