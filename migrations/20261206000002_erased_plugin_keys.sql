-- Erasure used to leave a plugin export's key, which is its candidate's e-mail, and its resolution
-- note, and a later plugin submit for the same e-mail reopened the erased row by that key and wrote
-- the name and e-mail back into it. Erasure now rewrites both (erasure.rs); this does the same for
-- the exports erased before, and erases again what such a submit wrote back.
UPDATE exports
SET idempotency_key = CASE WHEN source = 'plugin' THEN 'plugin:erased:' || id
                           ELSE idempotency_key END,
    resolution = CASE WHEN resolution IS NULL THEN NULL ELSE 'erased' END,
    candidate_name = NULL, candidate_email = NULL, start_date = NULL,
    last_error = CASE WHEN last_error IS NULL THEN NULL ELSE 'erased' END
WHERE erased_at IS NOT NULL;

UPDATE export_steps SET exchanges = '[]', detail = CASE WHEN detail = '' THEN '' ELSE 'erased' END
WHERE export_id IN (SELECT id FROM exports WHERE erased_at IS NOT NULL)
  AND (exchanges != '[]' OR detail NOT IN ('', 'erased'));
