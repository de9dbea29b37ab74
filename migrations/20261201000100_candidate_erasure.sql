-- When an admin erased this export's candidate's personal data (see erasure.rs). An erased export
-- keeps its row, status and ids, and is never retried: that would fetch the person again.
ALTER TABLE exports ADD COLUMN erased_at TEXT;
