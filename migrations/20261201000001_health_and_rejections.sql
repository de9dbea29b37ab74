-- One row that readiness writes, so /readyz fails when the database cannot take a write.
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT    NOT NULL
);

-- The size a delivery had when it arrived. Rejected deliveries keep only a short prefix of their
-- body (an unverified body is a stranger's data), so this says whether `body` is all of it.
ALTER TABLE webhook_deliveries ADD COLUMN body_size INTEGER;
