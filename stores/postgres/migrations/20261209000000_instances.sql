-- Several console processes may serve this database. Each keeps a row here, seen_at moved on by
-- a heartbeat, so any of them can say how many are alive and which is which. Rows of processes
-- gone for a day are pruned by the survivors.
CREATE TABLE instances (
    id         text COLLATE "C" PRIMARY KEY,
    version    text COLLATE "C" NOT NULL,
    started_at text COLLATE "C" NOT NULL,
    seen_at    text COLLATE "C" NOT NULL
);

-- The database's time `ms` milliseconds from now, stored as the console stores times. Leases are
-- written and compared on this one clock, so processes whose own clocks disagree still agree on
-- whether a lease has lapsed.
CREATE FUNCTION time_text_after(ms bigint) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN to_char((statement_timestamp() + ms * interval '1 millisecond') AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
