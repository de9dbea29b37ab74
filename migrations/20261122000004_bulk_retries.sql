-- A bulk retry an operator started from the exports list: who, when, with which filters, and
-- whether it was cancelled. Its progress is not stored: it is read from its members' exports.
CREATE TABLE bulk_retries (
    id           INTEGER PRIMARY KEY,
    actor_id     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor_email  TEXT,
    -- the list's filters as JSON, as the operator saw them in the preview
    filter       TEXT    NOT NULL DEFAULT '{}',
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    cancelled_at TEXT,
    cancelled_by TEXT
);
CREATE INDEX bulk_retries_created ON bulk_retries (created_at DESC, id DESC);

-- The exports a bulk retry queued, with what they were before, so a cancel can put back the ones
-- the worker has not started yet.
CREATE TABLE bulk_retry_members (
    bulk_retry_id     INTEGER NOT NULL REFERENCES bulk_retries (id) ON DELETE CASCADE,
    export_id         INTEGER NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    previous_status   TEXT    NOT NULL CHECK (previous_status IN ('needs_attention', 'dead')),
    previous_attempts INTEGER NOT NULL,
    -- a later retry (single or bulk) took this export over; this run no longer speaks for it
    superseded        INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1)),
    -- put back to previous_status by a cancel before the worker started it
    cancelled         INTEGER NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1)),
    PRIMARY KEY (bulk_retry_id, export_id)
) WITHOUT ROWID;
CREATE INDEX bulk_retry_members_export ON bulk_retry_members (export_id);

-- The dashboard's "last call to HiBob / Pinpoint" reads the newest step of a kind and outcome.
CREATE INDEX export_steps_kind ON export_steps (step, outcome, started_at);
