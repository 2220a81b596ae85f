ALTER TABLE audit_las DROP COLUMN pattern_reached;
