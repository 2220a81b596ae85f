-- Launch from an EPR (SPEC §10). `viewer_launch_jtis`: every launch token's `jti` (with its
-- issuer, as the SHA-256 hex of both) kept until the token could no longer be accepted, so a
-- replay is refused across restarts and across server processes. `viewer_launches`: a good
-- launch waiting for its browser to reach Find a child (through sign-in when it has no session),
-- keyed by the SHA-256 of the random token in the browser's launch cookie. Once a session picks
-- it up, the NHS number moves to the session (`viewer_sessions.launch_nhs`) until the search.
-- Times are epoch milliseconds of the server's clock.
CREATE TABLE viewer_launch_jtis (
    jti_hash TEXT PRIMARY KEY NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX viewer_launch_jtis_expires ON viewer_launch_jtis (expires_ms);
CREATE TABLE viewer_launches (
    token_hash TEXT PRIMARY KEY NOT NULL,
    nhs_number TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX viewer_launches_expires ON viewer_launches (expires_ms);
ALTER TABLE viewer_sessions ADD COLUMN launch_nhs TEXT;
