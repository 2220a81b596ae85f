-- Versioned resource store: the current version of every resource, its history, and the
-- search index tables. Instants are BIGINT epoch milliseconds (UTC) on both engines.
CREATE TABLE resources (
    resource_type TEXT NOT NULL,
    id TEXT NOT NULL,
    version_id BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    content TEXT NOT NULL,
    PRIMARY KEY (resource_type, id)
);
CREATE INDEX resources_by_last_updated ON resources (resource_type, last_updated);

CREATE TABLE resource_versions (
    resource_type TEXT NOT NULL,
    id TEXT NOT NULL,
    version_id BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    content TEXT NOT NULL,
    PRIMARY KEY (resource_type, id, version_id)
);

-- Token search index: identifier, patient, status, type, organization, ...
-- The lookup index serves `system|value` and plain `value` searches alike.
CREATE TABLE search_tokens (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    param TEXT NOT NULL,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, param, system, value)
);
CREATE INDEX search_tokens_lookup ON search_tokens (resource_type, param, value, system);

-- Date/period search index: [start_ms, end_ms) in epoch ms; an open end is 9223372036854775807.
CREATE TABLE search_dates (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    param TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, param)
);

-- Business identifiers that must be unique across the register (plan reference, ODS code).
-- The primary key is what makes concurrent conditional creates safe.
CREATE TABLE unique_identifiers (
    resource_type TEXT NOT NULL,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (resource_type, system, value)
);
