-- Accesses stored compactly (issue #16): an AuditEvent is rendered from these columns instead
-- of being kept whole as JSON (~1.4 KB of ~2.3 KB per access). `content` keeps the JSON of
-- the accesses recorded before this migration; new rows leave it empty.
ALTER TABLE audit_events ADD COLUMN interaction TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN agent_name TEXT;
ALTER TABLE audit_events ADD COLUMN org_name TEXT;
ALTER TABLE audit_events ADD COLUMN job_role TEXT;
ALTER TABLE audit_events ADD COLUMN job_role_code TEXT;
ALTER TABLE audit_events ADD COLUMN observer TEXT NOT NULL DEFAULT '';
-- The references returned (`Flag/{id} EpisodeOfCare/{id}`), separated by spaces.
ALTER TABLE audit_events ADD COLUMN entities TEXT NOT NULL DEFAULT '';
-- The child's attendance summary as of the access (`crate::attendance`), when one was made.
ALTER TABLE audit_events ADD COLUMN attendances INTEGER;
ALTER TABLE audit_events ADD COLUMN attendance_settings INTEGER;
ALTER TABLE audit_events ADD COLUMN attendance_window_days INTEGER;
ALTER TABLE audit_events ADD COLUMN attendance_pattern BOOLEAN;

-- The LAs an access concerns, keyed by the access's `seq` (8 bytes, and in the child index
-- already) rather than its 36-character id; without a rowid, the key is the table.
CREATE TABLE audit_las (
    la_ods TEXT NOT NULL,
    recorded_ms BIGINT NOT NULL,
    event_seq BIGINT NOT NULL REFERENCES audit_events (seq) ON DELETE CASCADE,
    shown BOOLEAN NOT NULL,
    PRIMARY KEY (la_ods, recorded_ms, event_seq)
) WITHOUT ROWID;
CREATE INDEX audit_las_event ON audit_las (event_seq);
INSERT INTO audit_las (la_ods, recorded_ms, event_seq, shown)
    SELECT l.la_ods, l.recorded_ms, e.seq, l.shown
    FROM audit_event_las l JOIN audit_events e ON e.id = l.audit_event_id;
DROP TABLE audit_event_las;
