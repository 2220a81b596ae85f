-- The token lookup index also holds the resource id, so a lookup (`resource_type, param, value,
-- system` -> ids) is answered from the index alone. Without it, SQLite on a database without
-- planner statistics preferred the primary key (covering, but keyed by resource id) and read
-- every token of the type.
DROP INDEX search_tokens_lookup;
CREATE INDEX search_tokens_lookup ON search_tokens (resource_type, param, value, system, resource_id);
