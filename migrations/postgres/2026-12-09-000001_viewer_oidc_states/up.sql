-- The viewer's OpenID Connect sign-ins under way (SPEC §10): for each authorization request,
-- the SHA-256 of its `state` (the key), the SHA-256 of the random token in the browser's
-- cookie that started it, its `nonce` and its PKCE verifier, until `expires_ms` (epoch ms).
-- The callback deletes the row it uses: each is single-use.
CREATE TABLE viewer_oidc_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX viewer_oidc_states_expires ON viewer_oidc_states (expires_ms);
