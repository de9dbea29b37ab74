-- Every saved mapping, as a whole, never changed afterwards: an export names the version it used,
-- so what was sent to HiBob can always be explained, and any version can be restored (as a new one).
CREATE TABLE mapping_versions (
    -- the number people see: v1, v2, …
    id            INTEGER PRIMARY KEY,
    -- the mapping document (fields and custom variables) as JSON
    document      TEXT    NOT NULL CHECK (json_valid(document)),
    note          TEXT    NOT NULL DEFAULT '',
    author_id     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    author        TEXT    NOT NULL,
    restored_from INTEGER REFERENCES mapping_versions (id),
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER mapping_versions_no_update BEFORE UPDATE ON mapping_versions
BEGIN
    SELECT RAISE(ABORT, 'mapping versions are immutable: save a new version instead');
END;

CREATE TRIGGER mapping_versions_no_delete BEFORE DELETE ON mapping_versions
BEGIN
    SELECT RAISE(ABORT, 'mapping versions are immutable');
END;

-- Version 1 is the built-in mapping: what the original Lambda did, with the site and the fallback
-- start date taken from Settings. (A unit test keeps this equal to mapping::default_document.)
INSERT INTO mapping_versions (id, document, note, author) VALUES (
    1,
    '{"fields":[{"target":"root.firstName","sources":["{{ candidate_first_name }}"]},{"target":"root.surname","sources":["{{ candidate_last_name }}"]},{"target":"root.email","sources":["{{ candidate_email }}"]},{"target":"work.site","sources":["{{ default_site }}"]},{"target":"work.startDate","sources":["{{ candidate_start_date }}","{{ default_start_date }}"]}],"variables":[]}',
    'The built-in mapping',
    'built-in'
);

-- The version the export's employee body was built with; set by its first mapping step and kept
-- across automatic retries, replaced only when an operator retries with the current mapping.
ALTER TABLE exports ADD COLUMN mapping_version INTEGER REFERENCES mapping_versions (id);
