INSERT INTO resource_versions (resource_type, id, version_id, last_updated, deleted, content)
SELECT resource_type, id, version_id, last_updated, deleted, content FROM resources;
