-- A resource's current version lives in `resources` only; `resource_versions` holds the
-- versions superseded since. The copies of current versions go (each plan's and Flag's content
-- was written twice: a third of an upload's bytes).
DELETE FROM resource_versions
WHERE EXISTS (
    SELECT 1 FROM resources r
    WHERE r.resource_type = resource_versions.resource_type
      AND r.id = resource_versions.id
      AND r.version_id = resource_versions.version_id
);
