-- The User Access report (SPEC §2 governance): one person's accesses over a month at most,
-- found without reading every access of that month.
CREATE INDEX audit_events_agent ON audit_events (agent_sub, recorded_ms);
