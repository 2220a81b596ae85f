ALTER TABLE audit_event_las DROP COLUMN shown;
