-- Whether an access was shown to at least one of its LAs. The 24-hour check needs only the
-- same person's views that were shown somewhere (in the history or to an LA); a clinician who
-- opens the same child again and again left dozens of views a day, each read and each looked
-- up for its LAs in every later batch. With this in the child index, the views shown nowhere
-- are passed over inside the index.
ALTER TABLE audit_events ADD COLUMN told_las BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE audit_events SET told_las = TRUE
WHERE seq IN (SELECT event_seq FROM audit_las WHERE shown);
DROP INDEX audit_events_child;
CREATE INDEX audit_events_child ON audit_events (nhs_number, recorded_ms, agent_sub, agent_org, shown) INCLUDE (seq, told_las);
