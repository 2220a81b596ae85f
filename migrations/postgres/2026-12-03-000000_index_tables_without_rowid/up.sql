-- (SQLite stores its index tables WITHOUT ROWID in this migration; PostgreSQL's tables are
-- heaps with their indexes already.) A resource's identifiers, to release them when it is
-- deleted or changes its identifier: without it, each release read the whole register.
CREATE INDEX unique_identifiers_of_resource ON unique_identifiers (resource_type, resource_id);
