-- The audit writer reads, for each batch's children, their reportable accesses (care setting
-- and role) and whether each was shown, told its LAs or was in an attendance pattern. With
-- every column it reads in the child index, those reads are index-only: no visit to a heap
-- page per earlier access (issue #31).
DROP INDEX audit_events_child;
CREATE INDEX audit_events_child ON audit_events (nhs_number, recorded_ms, agent_sub, agent_org, shown)
    INCLUDE (seq, told_las, attendance_pattern, care_setting, accessor_role);
