-- Retention (retention.rs) looks for old rows still holding bodies or call records. These indexes
-- hold only such rows, so each hourly batch finds them without walking the ones already pruned,
-- or reading every step's (large) call records to learn its time.
CREATE INDEX webhook_deliveries_with_body ON webhook_deliveries (received_at)
    WHERE body != '' OR headers != '{}';
CREATE INDEX export_steps_recorded ON export_steps (started_at) WHERE exchanges != '[]';
