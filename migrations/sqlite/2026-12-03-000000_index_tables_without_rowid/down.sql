CREATE TABLE search_tokens_rowid (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    param TEXT NOT NULL,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, param, system, value)
);
INSERT INTO search_tokens_rowid (resource_type, resource_id, param, system, value)
    SELECT resource_type, resource_id, param, system, value FROM search_tokens;
DROP TABLE search_tokens;
ALTER TABLE search_tokens_rowid RENAME TO search_tokens;
CREATE INDEX search_tokens_lookup ON search_tokens (resource_type, param, value, system, resource_id);

CREATE TABLE search_dates_rowid (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    param TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, param)
);
INSERT INTO search_dates_rowid (resource_type, resource_id, param, start_ms, end_ms)
    SELECT resource_type, resource_id, param, start_ms, end_ms FROM search_dates;
DROP TABLE search_dates;
ALTER TABLE search_dates_rowid RENAME TO search_dates;

CREATE TABLE unique_identifiers_rowid (
    resource_type TEXT NOT NULL,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (resource_type, system, value)
);
INSERT INTO unique_identifiers_rowid (resource_type, system, value, resource_id)
    SELECT resource_type, system, value, resource_id FROM unique_identifiers;
DROP TABLE unique_identifiers;
ALTER TABLE unique_identifiers_rowid RENAME TO unique_identifiers;
