-- A bulk retry rebuilds its exports with the mapping in force (their pinned version is cleared);
-- a cancel puts back the version each export had, with its status and attempts.
ALTER TABLE bulk_retry_members ADD COLUMN previous_mapping_version INTEGER REFERENCES mapping_versions (id);
