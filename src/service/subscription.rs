//! Subscriptions (SPEC §3): an LA's rest-hook registrations, managed by that LA only, and the
//! delivery health the dispatcher reports (`status: error` after repeated failures).

use serde_json::{json, Value};

use super::check_if_match;
use crate::auth::{Action, Caller, LaScope};
use crate::db::models::ResourceRow;
use crate::db::subscriptions::{self, SubscriptionRow};
use crate::db::{write_transaction, DbConn};
use crate::endpoints::{check_header, EndpointPolicy};
use crate::error::{FhirError, Issue};
use crate::fhir::subscription::SubscriptionStatus;
use crate::fhir::types::{instant, PROFILE_BASE};
use crate::validation::Profiles;

const TYPE: &str = "Subscription";
/// A Subscription body that passed its profile and the endpoint policy.
pub struct SubscriptionInput(Value);

impl SubscriptionInput {
    pub fn check(
        profiles: &Profiles,
        policy: &EndpointPolicy,
        resource: Value,
    ) -> Result<SubscriptionInput, FhirError> {
        let mut issues = profiles.validate(TYPE, TYPE, &resource);
        if issues.is_empty() {
            let endpoint = resource
                .pointer("/channel/endpoint")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Err(reason) = policy.check_url(endpoint) {
                issues.push(Issue::invalid("Subscription.channel.endpoint", reason));
            }
            let headers = resource
                .pointer("/channel/header")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for (n, header) in headers.enumerate() {
                let checked = header
                    .as_str()
                    .ok_or_else(|| "a header is a string".to_string())
                    .and_then(check_header);
                if let Err(reason) = checked {
                    issues.push(Issue::invalid(
                        format!("Subscription.channel.header[{n}]"),
                        reason,
                    ));
                }
            }
        }
        if issues.is_empty() {
            Ok(SubscriptionInput(resource))
        } else {
            Err(FhirError::Invalid(issues))
        }
    }

    /// The id the body names, if any.
    pub fn id(&self) -> Option<&str> {
        self.0.get("id").and_then(Value::as_str)
    }

    /// The status the client asks for: `off` stops deliveries; anything else (`requested`)
    /// is made `active` by the server.
    fn requested_status(&self) -> SubscriptionStatus {
        match self.0.get("status").and_then(Value::as_str) {
            Some(code) if SubscriptionStatus::parse(code) == SubscriptionStatus::Off => {
                SubscriptionStatus::Off
            }
            _ => SubscriptionStatus::Active,
        }
    }
}

/// The stored resource: the client's body with the server's id, meta, status and error.
fn render(
    body: &Value,
    id: &str,
    version: i64,
    now: i64,
    status: SubscriptionStatus,
    error: Option<&str>,
) -> String {
    let mut resource = body.clone();
    if let Some(obj) = resource.as_object_mut() {
        obj.remove("text");
        obj.remove("error");
        obj.insert("id".into(), json!(id));
        obj.insert(
            "meta".into(),
            json!({
                "versionId": version.to_string(),
                "lastUpdated": instant(now),
                "profile": [format!("{PROFILE_BASE}CPIS-{TYPE}")],
            }),
        );
        obj.insert("status".into(), json!(status.as_str()));
        if let Some(error) = error {
            obj.insert("error".into(), json!(error));
        }
    }
    resource.to_string()
}

/// The row as the generic response machinery sees a resource version.
pub fn as_resource_row(row: &SubscriptionRow) -> ResourceRow {
    ResourceRow {
        resource_type: TYPE.into(),
        id: row.id.clone(),
        version_id: row.version_id,
        last_updated: row.last_updated,
        deleted: false,
        content: row.content.clone(),
    }
}

fn not_found(id: &str) -> FhirError {
    FhirError::NotFound {
        ty: TYPE.into(),
        id: id.to_string(),
    }
}

/// The caller's LA, which every Subscription write belongs to.
fn own_la(caller: &Caller) -> Result<String, FhirError> {
    caller.require(Action::ManageSubscription)?;
    caller
        .org()
        .map(str::to_string)
        .ok_or_else(|| FhirError::Forbidden("the token names no LA (org)".into()))
}

/// A stored Subscription the caller may see: its own LA's, or any for operations.
fn visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<SubscriptionRow, FhirError> {
    let row = subscriptions::find(conn, id)?.ok_or_else(|| not_found(id))?;
    caller.la_scope().admit(&row.la_ods)?;
    Ok(row)
}

pub fn create(
    conn: &mut DbConn,
    caller: &Caller,
    input: &SubscriptionInput,
    now: i64,
) -> Result<SubscriptionRow, FhirError> {
    let la = own_la(caller)?;
    let id = uuid::Uuid::new_v4().to_string();
    let status = input.requested_status();
    let row = SubscriptionRow {
        content: render(&input.0, &id, 1, now, status, None),
        id,
        la_ods: la,
        version_id: 1,
        last_updated: now,
        status: status.as_str().into(),
        consecutive_failures: 0,
    };
    write_transaction(conn, |conn| subscriptions::insert(conn, &row))?;
    Ok(row)
}

pub fn read(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<SubscriptionRow, FhirError> {
    caller.require(Action::ReadSubscription)?;
    Ok(shown_to(caller, visible(conn, caller, id)?))
}

/// What a caller sees of a Subscription: operations oversee every LA's, but not the
/// credentials an LA put in `channel.header` (`Name: value` becomes `Name: [redacted]`).
fn shown_to(caller: &Caller, mut row: SubscriptionRow) -> SubscriptionRow {
    if let LaScope::Own(_) = caller.la_scope() {
        return row;
    }
    if let Ok(mut body) = serde_json::from_str::<Value>(&row.content) {
        if let Some(headers) = body
            .pointer_mut("/channel/header")
            .and_then(Value::as_array_mut)
        {
            for header in headers.iter_mut() {
                let name = header
                    .as_str()
                    .and_then(|h| h.split_once(':'))
                    .map(|(name, _)| name.trim().to_string());
                if let Some(name) = name {
                    *header = json!(format!("{name}: [redacted]"));
                }
            }
        }
        row.content = body.to_string();
    }
    row
}

/// PUT: a new version, unless nothing changed. Re-activating (or any update that leaves it on)
/// clears past failures.
pub fn update(
    conn: &mut DbConn,
    caller: &Caller,
    id: &str,
    input: &SubscriptionInput,
    if_match: Option<i64>,
    now: i64,
) -> Result<SubscriptionRow, FhirError> {
    own_la(caller)?;
    write_transaction(conn, |conn| {
        let current = visible(conn, caller, id)?;
        check_if_match(if_match, &as_resource_row(&current))?;
        let status = input.requested_status();
        // An unchanged Subscription gets no new version (as for plans).
        let unchanged = render(
            &input.0,
            id,
            current.version_id,
            current.last_updated,
            status,
            None,
        );
        if unchanged == current.content {
            return Ok(current);
        }
        let version = current.version_id + 1;
        let row = SubscriptionRow {
            content: render(&input.0, id, version, now, status, None),
            version_id: version,
            last_updated: now,
            status: status.as_str().into(),
            consecutive_failures: 0,
            ..current.clone()
        };
        if !subscriptions::replace(conn, &row, current.version_id)? {
            return Err(FhirError::VersionMismatch {
                expected: current.version_id.to_string(),
                actual: current.version_id + 1,
            });
        }
        Ok(row)
    })
}

pub fn delete(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<(), FhirError> {
    own_la(caller)?;
    write_transaction(conn, |conn| {
        visible(conn, caller, id)?;
        subscriptions::delete(conn, id)?;
        Ok(())
    })
}

/// `Subscription?status=`: an LA's own; operations see all.
pub fn search(
    conn: &mut DbConn,
    caller: &Caller,
    filter: &subscriptions::SubscriptionFilter,
    paging: &crate::search::parse::Paging,
) -> Result<(Vec<SubscriptionRow>, i64), FhirError> {
    caller.require(Action::ReadSubscription)?;
    let own = caller.la_scope();
    let la = match &own {
        LaScope::Every => None,
        LaScope::Own(ods) => Some(ods.as_str()),
    };
    let (rows, total) = subscriptions::search(conn, la, filter, paging)?;
    Ok((
        rows.into_iter().map(|r| shown_to(caller, r)).collect(),
        total,
    ))
}

/// The dispatcher's report of one delivery: a success clears the failures (and an `error`
/// status); the fifth consecutive failure sets `status: error` with the reason.
pub fn record_delivery(
    conn: &mut DbConn,
    id: &str,
    failure: Option<&str>,
    now: i64,
) -> Result<(), FhirError> {
    write_transaction(conn, |conn| {
        let Some(current) = subscriptions::find(conn, id)? else {
            return Ok(());
        };
        let failures = match failure {
            Some(_) => current.consecutive_failures + 1,
            None => 0,
        };
        let was = SubscriptionStatus::parse(&current.status);
        let status = was.after_delivery(failure.is_some(), failures);
        if failures == current.consecutive_failures && status == was {
            return Ok(()); // nothing to write: most deliveries succeed as the last one did
        }
        let mut row = SubscriptionRow {
            consecutive_failures: failures,
            ..current.clone()
        };
        // A new version only when the status changes, not on every retry.
        if status != was {
            let body: Value =
                serde_json::from_str(&current.content).map_err(FhirError::internal)?;
            // Only "delivery failed" or "endpoint answered HTTP N" (notify::post): no network
            // detail an LA could use to map what the server can reach.
            let error = (status == SubscriptionStatus::Error)
                .then(|| failure.unwrap_or_default().to_string());
            row.version_id = current.version_id + 1;
            row.last_updated = now;
            row.status = status.as_str().into();
            row.content = render(&body, id, row.version_id, now, status, error.as_deref());
        }
        subscriptions::replace(conn, &row, current.version_id)?;
        Ok(())
    })
}
