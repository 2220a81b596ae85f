-- Access audit (SPEC §3 AuditEvent): one row per access to one child. `shown` marks the rows
-- of the access history: health-care, unscheduled, and the first view by that person at that
-- organisation of that child within 24 hours. The JSON AuditEvent is kept whole in `content`.
-- `seq` orders accesses recorded in the same millisecond.
CREATE TABLE audit_events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    recorded_ms BIGINT NOT NULL,
    nhs_number TEXT NOT NULL,
    agent_sub TEXT NOT NULL,
    agent_org TEXT NOT NULL,
    care_setting TEXT NOT NULL,
    accessor_role TEXT NOT NULL,
    shown BOOLEAN NOT NULL,
    content TEXT NOT NULL
);
-- Serves the history (newest first) and, without touching the table, the 24-hour check.
CREATE INDEX audit_events_child ON audit_events (nhs_number, recorded_ms, agent_sub, agent_org, shown);
CREATE INDEX audit_events_recorded ON audit_events (recorded_ms);

-- The LAs whose children an access touched: what an LA may see and pull.
CREATE TABLE audit_event_las (
    la_ods TEXT NOT NULL,
    recorded_ms BIGINT NOT NULL,
    audit_event_id TEXT NOT NULL REFERENCES audit_events (id) ON DELETE CASCADE,
    PRIMARY KEY (la_ods, recorded_ms, audit_event_id)
);
CREATE INDEX audit_event_las_event ON audit_event_las (audit_event_id);

-- An LA's rest-hook Subscriptions (SPEC §3 Subscription). `consecutive_failures` drives
-- `status: error` after repeated failed deliveries.
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    la_ods TEXT NOT NULL,
    version_id BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    status TEXT NOT NULL,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    content TEXT NOT NULL
);
CREATE INDEX subscriptions_la ON subscriptions (la_ods, status);

-- Durable notification outbox: one row per (access, subscription), committed with the
-- AuditEvent. `id` is the X-CPIS-Notification-Id. A dispatcher claims due rows by setting a
-- lease; a row whose lease has run out (its process died) is claimed again.
CREATE TABLE notification_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    audit_event_id TEXT NOT NULL REFERENCES audit_events (id) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    delivered_ms BIGINT,
    last_error TEXT
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_ms) WHERE delivered_ms IS NULL;
CREATE INDEX notification_outbox_event ON notification_outbox (audit_event_id);
CREATE INDEX notification_outbox_subscription ON notification_outbox (subscription_id);
