-- Written just before HiBob is asked to create an export's employee and cleared when HiBob refuses:
-- an attempt that finds it set follows one that may have created the employee and been cut off
-- before saving the id, so it looks the e-mail up before creating (export_pipeline.rs).
ALTER TABLE exports ADD COLUMN create_sent_at TEXT;
