DROP INDEX audit_events_pattern;
ALTER TABLE audit_events DROP COLUMN pattern_reached;
