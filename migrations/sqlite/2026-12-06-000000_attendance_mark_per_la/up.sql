-- The repeated-attendance mark is per LA (SPEC §3): the access that first reaches a pattern is
-- marked for each LA it is shown to, and an LA that adds a plan while the child is already in a
-- pattern gets the mark on the first access it is shown. Marks made before were the child's.
ALTER TABLE audit_las ADD COLUMN pattern_reached BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE audit_las SET pattern_reached = TRUE
    WHERE shown AND event_seq IN (SELECT seq FROM audit_events WHERE pattern_reached);
