DROP TABLE unique_identifiers;
DROP TABLE search_dates;
DROP TABLE search_tokens;
DROP TABLE resource_versions;
DROP TABLE resources;
