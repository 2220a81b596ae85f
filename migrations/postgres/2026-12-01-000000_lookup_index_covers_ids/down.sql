DROP INDEX search_tokens_lookup;
CREATE INDEX search_tokens_lookup ON search_tokens (resource_type, param, value, system);
