-- Alerts about stopped exports, written with the stop and sent by a dispatcher of their own, so
-- a failing alert channel never holds an export up. Each channel keeps its own progress.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL CHECK (kind IN ('stopped', 'recovered')),
    export_id        INTEGER REFERENCES exports (id) ON DELETE CASCADE,
    -- the hire starts within a week: sent at once rather than in the next digest
    urgent           INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    -- 1 once sent on that channel, or when the channel was not set up
    webhook_done     INTEGER NOT NULL DEFAULT 0,
    email_done       INTEGER NOT NULL DEFAULT 0,
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    email_attempts   INTEGER NOT NULL DEFAULT 0,
    next_try_at      TEXT    NOT NULL,
    last_error       TEXT
);
CREATE INDEX alerts_webhook_pending ON alerts (webhook_done, next_try_at);
CREATE INDEX alerts_email_pending ON alerts (email_done, next_try_at);

-- The onboarding invitation, sent at most once per export: `invite_started_at` is written before
-- HiBob is asked, `invited_at` when it answered (or the step was settled as skipped). An attempt
-- cut off in between does not ask again, since HiBob cannot be asked whether it already invited.
ALTER TABLE exports ADD COLUMN invite_started_at TEXT;
ALTER TABLE exports ADD COLUMN invited_at TEXT;
