DROP INDEX audit_events_deciding;
DROP INDEX audit_events_child;
CREATE INDEX audit_events_child ON audit_events (nhs_number, recorded_ms, agent_sub, agent_org, shown)
    INCLUDE (seq, told_las, attendance_pattern, care_setting, accessor_role);
ALTER TABLE audit_events DROP COLUMN opens_attendance_hour;
