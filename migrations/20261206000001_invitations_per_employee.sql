-- The employees this console created in HiBob, by HiBob's id, and the welcome invitation each gets
-- at most once. A plugin submit and the webhook export of one hire are two export rows but one
-- employee, so the invitation is kept here rather than on the rows. An employee HiBob already had
-- (found by e-mail) has no row and is never invited. `invite_started_at` is written before HiBob
-- is asked, `invited_at` once it answered or the step was settled; one cut off in between is not
-- asked again, since HiBob cannot be asked whether it already invited.
CREATE TABLE console_employees (
    employee_id       TEXT    PRIMARY KEY NOT NULL,
    -- the export that created the employee
    export_id         INTEGER REFERENCES exports (id) ON DELETE SET NULL,
    created_at        TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    invite_started_at TEXT,
    invited_at        TEXT
);

-- Employees created (and invited, or not) before this table existed are known from their
-- exports: each counts as settled, so nobody is invited a second time after the upgrade.
INSERT OR IGNORE INTO console_employees (employee_id, export_id, invite_started_at, invited_at)
SELECT hibob_employee_id, MIN(id), MIN(invite_started_at),
       COALESCE(MIN(invited_at), MIN(invite_started_at), MIN(updated_at))
FROM exports
WHERE hibob_employee_id IS NOT NULL
GROUP BY hibob_employee_id;

-- Written just before Pinpoint is asked to post the comment and cleared when Pinpoint answers
-- with a refusal: an attempt that finds it set follows one that may have posted the comment
-- without hearing back. Pinpoint cannot be asked which comments an application has, so that
-- attempt posts again and says on the timeline that the comment may now show twice.
ALTER TABLE exports ADD COLUMN comment_started_at TEXT;

-- Plugin submits used to hold their row as running without a lease, so one cut off by a crash
-- stayed running for good. No submit runs while migrations do: any such row was cut off.
UPDATE exports
SET status = 'needs_attention',
    last_error = 'the submit was cut off before it finished (the console stopped, or the request '
                 || 'was abandoned), so what reached HiBob is not known: retry it here to finish it '
                 || 'from the Pinpoint application, or submit the form in Pinpoint again',
    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE source = 'plugin' AND status = 'running';
