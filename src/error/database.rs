//! Database failures as `FhirError`s: the load or outage of the moment is 503 (the client may
//! try again), anything else a fault (500) whose cause never reaches the client.

use super::FhirError;

impl From<r2d2::Error> for FhirError {
    fn from(e: r2d2::Error) -> Self {
        FhirError::Unavailable(format!("database pool: {e}"))
    }
}

/// Whether a database error is the load or outage of the moment (the client may try again)
/// rather than a fault: SQLite's `SQLITE_BUSY`/`SQLITE_LOCKED`, PostgreSQL's serialization
/// failures (40001), deadlocks (40P01), lock and statement timeouts (55P03, 57014), and a
/// server that went away (shut down, restarted, connection lost). libpq's SQLSTATE of all but
/// the first reaches diesel only as the message, which is matched.
fn is_contention(kind: &diesel::result::DatabaseErrorKind, message: &str) -> bool {
    use diesel::result::DatabaseErrorKind;
    const TRANSIENT: &[&str] = &[
        "database is locked",
        "database table is locked",
        "database schema is locked",
        "deadlock detected",
        "could not obtain lock",
        "lock timeout",
        "statement timeout",
        "could not serialize access",
        "terminating connection",
        "server closed the connection",
        "no connection to the server",
        "connection to server",
        "could not receive data from server",
        "could not send data to server",
        "SSL connection has been closed",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
    ];
    matches!(kind, DatabaseErrorKind::SerializationFailure)
        || TRANSIENT.iter().any(|t| message.contains(t))
}

impl From<diesel::result::Error> for FhirError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            // The database's own message names tables: keep it out of the client's answer.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => FhirError::Conflict {
                expression: None,
                reason: "a resource with this identifier already exists".into(),
            },
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                FhirError::Unavailable(format!("database connection closed: {}", info.message()))
            }
            Error::DatabaseError(kind, info) if is_contention(&kind, info.message()) => {
                FhirError::Unavailable(format!("database busy: {}", info.message()))
            }
            other => FhirError::internal(format!("database: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::{header, StatusCode};
    use actix_web::ResponseError;

    use super::*;

    #[test]
    fn lock_contention_and_serialization_failures_are_503_with_retry_after() {
        use diesel::result::{DatabaseErrorKind, Error};
        let db = |kind, message: &str| -> FhirError {
            Error::DatabaseError(kind, Box::new(message.to_string())).into()
        };
        for busy in [
            db(DatabaseErrorKind::Unknown, "database is locked"),
            db(DatabaseErrorKind::Unknown, "database table is locked"),
            db(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access",
            ),
            db(DatabaseErrorKind::Unknown, "deadlock detected"),
            db(
                DatabaseErrorKind::Unknown,
                "canceling statement due to lock timeout",
            ),
        ] {
            assert_eq!(
                busy.status_code(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{busy}"
            );
            let response = busy.error_response();
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .map(|v| v.as_bytes()),
                Some(&b"5"[..])
            );
        }
        let fault = db(DatabaseErrorKind::Unknown, "no such table: resources");
        assert_eq!(fault.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
