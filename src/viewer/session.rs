//! Viewer sessions (SPEC §10): server-side rows in `viewer_sessions`, on both engines. The
//! browser holds a random token (its cookie); the row is keyed by the token's SHA-256, so a
//! copy of the database signs nobody in. A session is over once idle for 15 minutes or 8 hours
//! after sign-in (the server's clock, `Clock`), and then deleted; **Sign out** deletes it at
//! once. Expired sessions are purged at every sign-in.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Identity;
use crate::auth::{Caller, Role};
use crate::db::schema::viewer_sessions;
use crate::db::{write_transaction, DbConn};
use crate::error::FhirError;

/// A session unused this long is over.
pub const IDLE_MS: i64 = 15 * 60 * 1000;
/// A session this old is over, however busy.
pub const ABSOLUTE_MS: i64 = 8 * 60 * 60 * 1000;
/// The session cookie.
pub const COOKIE: &str = "cpis_viewer";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = viewer_sessions)]
struct Row {
    token_hash: String,
    identity: String,
    csrf: String,
    created_ms: i64,
    seen_ms: i64,
    result: Option<String>,
    launch_nhs: Option<String>,
}

/// The caller as a session keeps it: what an API token's claims would have named.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredIdentity {
    sub: String,
    role: String,
    name: Option<String>,
    org: Option<String>,
    org_name: Option<String>,
    job_role: Option<String>,
    job_role_code: Option<String>,
}

impl StoredIdentity {
    fn of(who: &Identity) -> StoredIdentity {
        StoredIdentity {
            sub: who.sub.clone(),
            role: who.role.as_str().to_string(),
            name: who.name.clone(),
            org: who.org.clone(),
            org_name: who.org_name.clone(),
            job_role: who.job_role.clone(),
            job_role_code: who.job_role_code.clone(),
        }
    }

    fn identity(self) -> Result<Identity, String> {
        Ok(Identity {
            sub: self.sub,
            role: self.role.parse::<Role>()?,
            name: self.name,
            org: self.org,
            org_name: self.org_name,
            job_role: self.job_role,
            job_role_code: self.job_role_code,
        })
    }
}

/// A live session: who is signed in, the form token, and the last lookup's page.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub caller: Caller,
    pub csrf: String,
    pub created_ms: i64,
    /// The last lookup's result (`lookup::Outcome` as JSON), shown after its redirect.
    pub result: Option<String>,
    /// The NHS number an EPR launch filled in (`launch`), until it is searched for.
    pub launch_nhs: Option<String>,
}

/// A fresh random token (256 bits, hex): a session cookie or a form token.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// The SHA-256 of a token, hex: what the table keys a session by.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn expired(created_ms: i64, seen_ms: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(seen_ms) >= IDLE_MS || now_ms.saturating_sub(created_ms) >= ABSOLUTE_MS
}

/// Signs `who` in at `now_ms`: purges expired sessions, stores a new one and returns its
/// cookie token with the session.
pub fn create(
    conn: &mut DbConn,
    who: &Identity,
    now_ms: i64,
) -> Result<(String, Session), FhirError> {
    let token = random_token();
    let row = Row {
        token_hash: hash(&token),
        identity: serde_json::to_string(&StoredIdentity::of(who)).map_err(FhirError::internal)?,
        csrf: random_token(),
        created_ms: now_ms,
        seen_ms: now_ms,
        result: None,
        launch_nhs: None,
    };
    write_transaction(conn, |conn| {
        purge_expired(conn, now_ms)?;
        diesel::insert_into(viewer_sessions::table)
            .values(&row)
            .execute(conn)
    })?;
    Ok((
        token,
        Session {
            token_hash: row.token_hash,
            caller: Caller(who.clone()),
            csrf: row.csrf,
            created_ms: now_ms,
            result: None,
            launch_nhs: None,
        },
    ))
}

/// The live session of cookie token `token` at `now_ms`, marked as seen; `None` when there is
/// none, or it has expired (then it is deleted).
pub fn open(conn: &mut DbConn, token: &str, now_ms: i64) -> Result<Option<Session>, FhirError> {
    let key = hash(token);
    let found: Option<Row> = viewer_sessions::table
        .find(&key)
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = found else {
        return Ok(None);
    };
    if expired(row.created_ms, row.seen_ms, now_ms) {
        end(conn, &key)?;
        return Ok(None);
    }
    let stored: StoredIdentity =
        serde_json::from_str(&row.identity).map_err(FhirError::internal)?;
    let identity = stored.identity().map_err(FhirError::internal)?;
    write_transaction(conn, |conn| {
        diesel::update(viewer_sessions::table.find(&key))
            .set(viewer_sessions::seen_ms.eq(now_ms))
            .execute(conn)
    })?;
    Ok(Some(Session {
        token_hash: key,
        caller: Caller(identity),
        csrf: row.csrf,
        created_ms: row.created_ms,
        result: row.result,
        launch_nhs: row.launch_nhs,
    }))
}

/// Ends a session (sign-out, or found expired).
pub fn end(conn: &mut DbConn, token_hash: &str) -> Result<(), FhirError> {
    write_transaction(conn, |conn| {
        diesel::delete(viewer_sessions::table.find(token_hash)).execute(conn)
    })?;
    Ok(())
}

/// Keeps a lookup's result in its session, for the page its redirect leads to (an EPR launch's
/// NHS number, now searched for, is no longer filled in).
pub fn keep_result(conn: &mut DbConn, token_hash: &str, result: &str) -> Result<(), FhirError> {
    write_transaction(conn, |conn| {
        diesel::update(viewer_sessions::table.find(token_hash))
            .set((
                viewer_sessions::result.eq(Some(result)),
                viewer_sessions::launch_nhs.eq(None::<String>),
            ))
            .execute(conn)
    })?;
    Ok(())
}

/// Deletes every session over at `now_ms`; returns how many.
pub fn purge_expired(conn: &mut DbConn, now_ms: i64) -> QueryResult<usize> {
    diesel::delete(
        viewer_sessions::table.filter(
            viewer_sessions::seen_ms
                .le(now_ms.saturating_sub(IDLE_MS))
                .or(viewer_sessions::created_ms.le(now_ms.saturating_sub(ABSOLUTE_MS))),
        ),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_after_15_idle_minutes_or_8_hours() {
        let minute = 60 * 1000;
        assert!(!expired(0, 0, 15 * minute - 1));
        assert!(expired(0, 0, 15 * minute));
        // Busy all day: still over at 8 hours.
        let eight_hours = 8 * 60 * minute;
        assert!(!expired(0, eight_hours - minute, eight_hours - 1));
        assert!(expired(0, eight_hours - minute, eight_hours));
    }

    #[test]
    fn tokens_are_random_and_kept_only_as_their_hash() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
