-- Repeated attendance (issue #13): the access that first brings a child to the pattern in a
-- window is marked, for `AuditEvent?attendance-pattern=true`. Few are: a partial index.
ALTER TABLE audit_events ADD COLUMN pattern_reached BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX audit_events_pattern ON audit_events (recorded_ms) WHERE pattern_reached;
