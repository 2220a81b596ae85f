-- Development only: accesses recorded since the up migration keep no JSON (`content` is empty).
CREATE TABLE audit_event_las (
    la_ods TEXT NOT NULL,
    recorded_ms BIGINT NOT NULL,
    audit_event_id TEXT NOT NULL REFERENCES audit_events (id) ON DELETE CASCADE,
    shown BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (la_ods, recorded_ms, audit_event_id)
);
CREATE INDEX audit_event_las_event ON audit_event_las (audit_event_id);
INSERT INTO audit_event_las (la_ods, recorded_ms, audit_event_id, shown)
    SELECT l.la_ods, l.recorded_ms, e.id, l.shown
    FROM audit_las l JOIN audit_events e ON e.seq = l.event_seq;
DROP TABLE audit_las;
ALTER TABLE audit_events DROP COLUMN attendance_pattern;
ALTER TABLE audit_events DROP COLUMN attendance_window_days;
ALTER TABLE audit_events DROP COLUMN attendance_settings;
ALTER TABLE audit_events DROP COLUMN attendances;
ALTER TABLE audit_events DROP COLUMN entities;
ALTER TABLE audit_events DROP COLUMN observer;
ALTER TABLE audit_events DROP COLUMN job_role_code;
ALTER TABLE audit_events DROP COLUMN job_role;
ALTER TABLE audit_events DROP COLUMN org_name;
ALTER TABLE audit_events DROP COLUMN agent_name;
ALTER TABLE audit_events DROP COLUMN interaction;
