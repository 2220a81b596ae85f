-- Data-quality reports (SPEC §3 Bundle): each batch upload's batch-response, kept for its LA,
-- with the counts of accepted and rejected entries.
CREATE TABLE upload_reports (
    id TEXT PRIMARY KEY NOT NULL,
    la_ods TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX upload_reports_la ON upload_reports (la_ods, created_ms);
