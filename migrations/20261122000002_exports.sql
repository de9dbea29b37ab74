-- One export per hire: created by a verified application_hired webhook (or a plugin submit) and
-- worked by the queue until HiBob has the employee, the CV and Pinpoint has the comment.
CREATE TABLE exports (
    id                      INTEGER PRIMARY KEY,
    source                  TEXT    NOT NULL CHECK (source IN ('webhook', 'plugin')),
    -- event and application id: a second delivery of the same hire finds this row
    idempotency_key         TEXT    NOT NULL UNIQUE,
    pinpoint_application_id TEXT    NOT NULL,
    status                  TEXT    NOT NULL DEFAULT 'queued'
                            CHECK (status IN ('queued', 'running', 'succeeded', 'needs_attention', 'dead')),
    attempts                INTEGER NOT NULL DEFAULT 0,
    max_attempts            INTEGER NOT NULL DEFAULT 8,
    next_attempt_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    lease_owner             TEXT,
    lease_until             TEXT,
    candidate_name          TEXT,
    candidate_email         TEXT,
    start_date              TEXT,
    -- kept the moment HiBob answers, so a crash after creation never creates a second employee
    hibob_employee_id       TEXT,
    cv_uploaded             INTEGER NOT NULL DEFAULT 0,
    comment_posted          INTEGER NOT NULL DEFAULT 0,
    last_error              TEXT,
    created_at              TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at              TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX exports_due ON exports (status, next_attempt_at);
CREATE INDEX exports_created ON exports (created_at DESC, id DESC);
CREATE INDEX exports_application ON exports (pinpoint_application_id);

-- Every step of every attempt, with the calls it made (bodies redacted, no headers).
CREATE TABLE export_steps (
    id          INTEGER PRIMARY KEY,
    export_id   INTEGER NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    step        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('ok', 'skipped', 'failed')),
    detail      TEXT    NOT NULL DEFAULT '',
    exchanges   TEXT    NOT NULL DEFAULT '[]',
    started_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    duration_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX export_steps_export ON export_steps (export_id, id);

-- Every webhook delivery, whatever became of it. Rejected ones are kept so an operator can see
-- what Pinpoint (or someone else) sent and why it was refused.
CREATE TABLE webhook_deliveries (
    id             INTEGER PRIMARY KEY,
    received_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    outcome        TEXT    NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'ignored', 'rejected')),
    reason         TEXT    NOT NULL DEFAULT '',
    event          TEXT,
    application_id TEXT,
    body_sha256    TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    headers        TEXT    NOT NULL DEFAULT '{}',
    client_ip      TEXT,
    export_id      INTEGER REFERENCES exports (id) ON DELETE SET NULL
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at DESC, id DESC);
CREATE INDEX webhook_deliveries_hash ON webhook_deliveries (body_sha256);
CREATE INDEX webhook_deliveries_export ON webhook_deliveries (export_id);
