DROP INDEX audit_events_child;
CREATE INDEX audit_events_child ON audit_events (nhs_number, recorded_ms, agent_sub, agent_org, shown) INCLUDE (seq, told_las);
