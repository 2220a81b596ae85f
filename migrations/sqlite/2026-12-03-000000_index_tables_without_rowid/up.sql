-- The search index and the identifier register, each stored as the one B-tree it is searched
-- by (WITHOUT ROWID) instead of a rowid table plus an index holding the same columns again:
-- a plan's eight tokens were 24 B-tree inserts (3 per row, with the lookup index), now 16;
-- about a third fewer bytes for the index tables, and fewer pages for an upload to write.
CREATE TABLE search_tokens_keyed (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    param TEXT NOT NULL,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_type, param, value, system, resource_id)
) WITHOUT ROWID;
INSERT INTO search_tokens_keyed (resource_type, resource_id, param, system, value)
    SELECT resource_type, resource_id, param, system, value FROM search_tokens;
DROP TABLE search_tokens;
ALTER TABLE search_tokens_keyed RENAME TO search_tokens;
-- A resource's tokens, to replace them when it changes.
CREATE INDEX search_tokens_of_resource ON search_tokens (resource_type, resource_id);

CREATE TABLE search_dates_keyed (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    param TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, param)
) WITHOUT ROWID;
INSERT INTO search_dates_keyed (resource_type, resource_id, param, start_ms, end_ms)
    SELECT resource_type, resource_id, param, start_ms, end_ms FROM search_dates;
DROP TABLE search_dates;
ALTER TABLE search_dates_keyed RENAME TO search_dates;

CREATE TABLE unique_identifiers_keyed (
    resource_type TEXT NOT NULL,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (resource_type, system, value)
) WITHOUT ROWID;
INSERT INTO unique_identifiers_keyed (resource_type, system, value, resource_id)
    SELECT resource_type, system, value, resource_id FROM unique_identifiers;
DROP TABLE unique_identifiers;
ALTER TABLE unique_identifiers_keyed RENAME TO unique_identifiers;
-- A resource's identifiers, to release them when it is deleted or changes its identifier
-- (without it, each release read the whole register).
CREATE INDEX unique_identifiers_of_resource ON unique_identifiers (resource_type, resource_id);
