DROP TABLE notification_outbox;
DROP TABLE subscriptions;
DROP TABLE audit_event_las;
DROP TABLE audit_events;
