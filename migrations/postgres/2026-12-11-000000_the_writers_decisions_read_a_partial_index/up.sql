-- The audit writer decides each access (SPEC §3) from a child's earlier reportable accesses:
-- those shown somewhere (or that told their LAs), and one per (setting, hour) for the
-- attendances. It read them from the child index, walking every access of the child in the
-- attendance window: a child looked at a thousand times cost each batch a thousand index
-- entries. Now each access that is the first of its child, setting and hour says so
-- (opens_attendance_hour), and a partial index holds only the accesses that decide: the
-- writer's one read walks those alone (issue #31).
ALTER TABLE audit_events ADD COLUMN opens_attendance_hour BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE audit_events SET opens_attendance_hour = TRUE
WHERE care_setting = 'unscheduled' AND accessor_role = 'health-care'
  AND NOT EXISTS (
    SELECT 1 FROM audit_events earlier
    WHERE earlier.nhs_number = audit_events.nhs_number
      AND earlier.recorded_ms >= (audit_events.recorded_ms / 3600000) * 3600000
      AND earlier.recorded_ms <= audit_events.recorded_ms
      AND earlier.agent_org = audit_events.agent_org
      AND earlier.care_setting = 'unscheduled' AND earlier.accessor_role = 'health-care'
      AND (earlier.recorded_ms < audit_events.recorded_ms OR earlier.seq < audit_events.seq));
-- Shown, told and opening an hour are only ever set on reportable accesses (health-care,
-- unscheduled).
CREATE INDEX audit_events_deciding ON audit_events (nhs_number, recorded_ms)
    INCLUDE (seq, agent_sub, agent_org, shown, told_las, attendance_pattern,
             opens_attendance_hour, care_setting, accessor_role)
    WHERE ((shown OR told_las) OR opens_attendance_hour);
-- The child index serves the child's history now (shown accesses, newest first): the columns
-- the writer read through it are no longer needed in it.
DROP INDEX audit_events_child;
CREATE INDEX audit_events_child ON audit_events (nhs_number, recorded_ms);
