-- Keeping HiBob in step after the export.
--
-- `exports.sent_body` is the employee body an export sent to HiBob (or would have, when HiBob
-- already had the person): what "value sent" means on the export page. It is written once, when
-- the export reaches HiBob, and cleared when watching ends or the candidate is erased.
ALTER TABLE exports ADD COLUMN sent_body TEXT;

-- One row per watched hire, from a successful export until a while after the start date.
CREATE TABLE hire_watches (
    export_id       INTEGER PRIMARY KEY REFERENCES exports (id) ON DELETE CASCADE,
    employee_id     TEXT    NOT NULL,
    mapping_version INTEGER NOT NULL,
    -- the mapping's rendering of the application when it was last settled (JSON body); NULL until
    -- the first check when a person edited what was sent (the plugin form)
    baseline        TEXT,
    start_date      TEXT,
    -- no check after this day (the start date plus the setting; hire day plus 90 days if unknown)
    watch_until     TEXT    NOT NULL,
    next_check_at   TEXT    NOT NULL,
    lease_until     TEXT,
    checked_at      TEXT,
    check_error     TEXT,
    -- the open differences (JSON list) and how many
    changes         TEXT    NOT NULL DEFAULT '[]',
    change_count    INTEGER NOT NULL DEFAULT 0,
    -- 0 once Pinpoint no longer shows the application as hired
    hired           INTEGER NOT NULL DEFAULT 1,
    hire_note       TEXT,
    -- what a person decided about a hire that fell through
    decision        TEXT,
    decided_by      TEXT,
    decided_at      TEXT,
    stopped_at      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX hire_watches_due ON hire_watches (next_check_at) WHERE stopped_at IS NULL;
CREATE INDEX hire_watches_flagged ON hire_watches (start_date)
    WHERE change_count > 0 OR (hired = 0 AND decision IS NULL);

-- Alerts gain a third kind, a watched hire that changed in Pinpoint or fell through, with the
-- summary it was queued with. SQLite cannot widen a CHECK in place, so the table is rebuilt.
CREATE TABLE alerts_new (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL CHECK (kind IN ('stopped', 'recovered', 'changed')),
    export_id        INTEGER REFERENCES exports (id) ON DELETE CASCADE,
    urgent           INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    webhook_done     INTEGER NOT NULL DEFAULT 0,
    email_done       INTEGER NOT NULL DEFAULT 0,
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    email_attempts   INTEGER NOT NULL DEFAULT 0,
    next_try_at      TEXT    NOT NULL,
    last_error       TEXT,
    detail           TEXT
);
INSERT INTO alerts_new (id, kind, export_id, urgent, created_at, webhook_done, email_done,
                        webhook_attempts, email_attempts, next_try_at, last_error)
SELECT id, kind, export_id, urgent, created_at, webhook_done, email_done, webhook_attempts,
       email_attempts, next_try_at, last_error
FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_new RENAME TO alerts;
CREATE INDEX alerts_webhook_pending ON alerts (webhook_done, next_try_at);
CREATE INDEX alerts_email_pending ON alerts (email_done, next_try_at);
