-- The clinician viewer's sign-in sessions (SPEC §10): server-side and revocable. The browser
-- holds a random token; only its SHA-256 (hex) is kept here. `identity` is the caller as a
-- token would have named it (JSON); `result` the last lookup's page, for the GET after its
-- redirect. Times are epoch milliseconds of the server's clock; a session idle for 15 minutes
-- or 8 hours old is over, and deleted.
CREATE TABLE viewer_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    identity TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL,
    result TEXT
);
CREATE INDEX viewer_sessions_seen ON viewer_sessions (seen_ms);
