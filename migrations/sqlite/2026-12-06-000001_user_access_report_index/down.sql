DROP INDEX audit_events_agent;
