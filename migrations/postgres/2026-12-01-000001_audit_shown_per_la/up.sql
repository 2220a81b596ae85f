-- The 24-hour collapse is per LA (SPEC §3): an access is shown to, and notifies, each LA that
-- was not already shown the same person's view of the child within 24 hours. `shown` on
-- audit_events keeps the health-care history's meaning (the person's first view of the child).
ALTER TABLE audit_event_las ADD COLUMN shown BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE audit_event_las SET shown = TRUE
    WHERE audit_event_id IN (SELECT id FROM audit_events WHERE shown);
