-- Attempts an export spent before its latest retry (single or bulk): a retry gives a fresh
-- allowance (`attempts` counts from 0 again), while its timeline numbers every attempt as it
-- happened, across retries (a step records `earlier_attempts + attempts`).
ALTER TABLE exports ADD COLUMN earlier_attempts INTEGER NOT NULL DEFAULT 0;

-- The delivery a re-processed one was run through intake again from, so the page of the first
-- (a refused delivery, say) shows the delivery and the export its re-processing made. No foreign
-- key: retention deletes refused deliveries on its own schedule.
ALTER TABLE webhook_deliveries ADD COLUMN reprocessed_from INTEGER;
CREATE INDEX webhook_deliveries_reprocessed_from ON webhook_deliveries (reprocessed_from)
    WHERE reprocessed_from IS NOT NULL;
