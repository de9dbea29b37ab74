-- The exports list at scale (a million exports and more): every filter and search answers from an
-- index instead of reading every export.

-- Substring search over names, emails and ids. A trigram index finds the exports that hold every
-- trigram of the search text; the query then re-checks those candidates with LIKE, which stays the
-- definition of a match. detail=none (no positions) keeps the index a fraction of the size of a
-- full one, since the re-check does what positions would. Kept in step by the triggers below.
CREATE VIRTUAL TABLE export_search USING fts5 (
    candidate_name,
    candidate_email,
    pinpoint_application_id,
    hibob_employee_id,
    content = 'exports',
    content_rowid = 'id',
    tokenize = 'trigram',
    detail = 'none',
    columnsize = 0
);
INSERT INTO export_search (export_search) VALUES ('rebuild');

CREATE TRIGGER exports_search_insert AFTER INSERT ON exports BEGIN
    INSERT INTO export_search (rowid, candidate_name, candidate_email, pinpoint_application_id,
                               hibob_employee_id)
    VALUES (NEW.id, NEW.candidate_name, NEW.candidate_email, NEW.pinpoint_application_id,
            NEW.hibob_employee_id);
END;

-- An external-content index forgets a row only when told the exact values it indexed.
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

-- The list is newest first by creation time. Each filter, alone or with a date range, walks one
-- of these in that order and stops at the page's end (rowid, the tie-breaker, ends every index).
CREATE INDEX exports_status_created ON exports (status, created_at);
CREATE INDEX exports_source_created ON exports (source, created_at);
CREATE INDEX exports_status_source_created ON exports (status, source, created_at);
-- Short search texts match ids exactly (the application id already has its index).
CREATE INDEX exports_employee ON exports (hibob_employee_id);

-- Exports per status, kept by triggers: counting a million rows on every page load would cost
-- more than the page itself.
CREATE TABLE export_status_counts (
    status TEXT    PRIMARY KEY NOT NULL,
    n      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO export_status_counts (status, n) SELECT status, COUNT(*) FROM exports GROUP BY status;

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

-- The webhook log's filters: by outcome and by event in time order, and exact application ids.
CREATE INDEX webhook_deliveries_outcome ON webhook_deliveries (outcome, received_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event, received_at);
CREATE INDEX webhook_deliveries_application ON webhook_deliveries (application_id);
