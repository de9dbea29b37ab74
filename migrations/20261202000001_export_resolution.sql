-- An export that needs attention can be resolved by a person (with a note) or superseded by a
-- later successful "Send to HiBob" for the same application, so it leaves the attention lists
-- without pretending it succeeded. SQLite cannot widen a CHECK constraint in place: the table is
-- rebuilt as its documentation prescribes (migrations run with foreign keys off, so dropping the
-- old table deletes nothing that refers to it; every reference is checked afterwards).

CREATE TABLE exports_rebuilt (
    id                      INTEGER PRIMARY KEY,
    source                  TEXT    NOT NULL CHECK (source IN ('webhook', 'plugin')),
    -- event and application id: a second delivery of the same hire finds this row
    idempotency_key         TEXT    NOT NULL UNIQUE,
    pinpoint_application_id TEXT    NOT NULL,
    status                  TEXT    NOT NULL DEFAULT 'queued'
                            CHECK (status IN ('queued', 'running', 'succeeded', 'needs_attention',
                                              'dead', 'resolved')),
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
    updated_at              TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    mapping_version         INTEGER REFERENCES mapping_versions (id),
    invite_started_at       TEXT,
    invited_at              TEXT,
    erased_at               TEXT,
    create_sent_at          TEXT,
    -- who resolved it ("Send to HiBob" when a later submit superseded it), when, and why
    resolved_at             TEXT,
    resolved_by             TEXT,
    resolution              TEXT
);

INSERT INTO exports_rebuilt (id, source, idempotency_key, pinpoint_application_id, status, attempts,
                             max_attempts, next_attempt_at, lease_owner, lease_until, candidate_name,
                             candidate_email, start_date, hibob_employee_id, cv_uploaded,
                             comment_posted, last_error, created_at, updated_at, mapping_version,
                             invite_started_at, invited_at, erased_at, create_sent_at)
SELECT id, source, idempotency_key, pinpoint_application_id, status, attempts, max_attempts,
       next_attempt_at, lease_owner, lease_until, candidate_name, candidate_email, start_date,
       hibob_employee_id, cv_uploaded, comment_posted, last_error, created_at, updated_at,
       mapping_version, invite_started_at, invited_at, erased_at, create_sent_at
FROM exports;

DROP TABLE exports;
ALTER TABLE exports_rebuilt RENAME TO exports;

CREATE INDEX exports_due ON exports (status, next_attempt_at);
CREATE INDEX exports_created ON exports (created_at DESC, id DESC);
CREATE INDEX exports_application ON exports (pinpoint_application_id);
CREATE INDEX exports_status_created ON exports (status, created_at);
CREATE INDEX exports_source_created ON exports (source, created_at);
CREATE INDEX exports_status_source_created ON exports (status, source, created_at);
CREATE INDEX exports_employee ON exports (hibob_employee_id);

CREATE TRIGGER exports_search_insert AFTER INSERT ON exports BEGIN
    INSERT INTO export_search (rowid, candidate_name, candidate_email, pinpoint_application_id,
                               hibob_employee_id)
    VALUES (NEW.id, NEW.candidate_name, NEW.candidate_email, NEW.pinpoint_application_id,
            NEW.hibob_employee_id);
END;

CREATE TRIGGER exports_search_delete AFTER DELETE ON exports BEGIN
    INSERT INTO export_search (export_search, rowid, candidate_name, candidate_email,
                               pinpoint_application_id, hibob_employee_id)
    VALUES ('delete', OLD.id, OLD.candidate_name, OLD.candidate_email,
            OLD.pinpoint_application_id, OLD.hibob_employee_id);
END;

CREATE TRIGGER exports_search_update
AFTER UPDATE OF candidate_name, candidate_email, pinpoint_application_id, hibob_employee_id ON exports
BEGIN
    INSERT INTO export_search (export_search, rowid, candidate_name, candidate_email,
                               pinpoint_application_id, hibob_employee_id)
    VALUES ('delete', OLD.id, OLD.candidate_name, OLD.candidate_email,
            OLD.pinpoint_application_id, OLD.hibob_employee_id);
    INSERT INTO export_search (rowid, candidate_name, candidate_email, pinpoint_application_id,
                               hibob_employee_id)
    VALUES (NEW.id, NEW.candidate_name, NEW.candidate_email, NEW.pinpoint_application_id,
            NEW.hibob_employee_id);
END;

CREATE TRIGGER exports_count_insert AFTER INSERT ON exports BEGIN
    INSERT INTO export_status_counts (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER exports_count_delete AFTER DELETE ON exports BEGIN
    UPDATE export_status_counts SET n = n - 1 WHERE status = OLD.status;
END;

CREATE TRIGGER exports_count_status AFTER UPDATE OF status ON exports
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE export_status_counts SET n = n - 1 WHERE status = OLD.status;
    INSERT INTO export_status_counts (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

-- an export's page shows who retried or resolved it, read by the audit entries' target
CREATE INDEX audit_log_target ON audit_log (target, id);
