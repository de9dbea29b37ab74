-- The limits every console on this database keeps together, so that running several consoles
-- does not multiply them (integration::shared_limits). Only PostgreSQL has these tables: a
-- SQLite file has one console, which keeps its limits in memory. They hold live state that a
-- move of the database need not carry (migrate-db leaves them out) and grow no further than the
-- console prunes them.

-- One row per limit: a rate-limit gate of one set of credentials and endpoint, or one account's
-- or one client address's sign-in failures. The key is a SHA-256 digest of what the row is
-- about, so neither credentials nor e-mails nor addresses are written down; the state is the
-- core's JSON document. Each change locks its rows, reads, and writes them back in one short
-- transaction; rows past expires_at are deleted, and the sign-in kinds are capped in number.
CREATE TABLE shared_limits (
    kind       text COLLATE "C" NOT NULL
        CHECK (kind IN ('rate_gate', 'login_account', 'login_address')),
    key        bytea       NOT NULL CHECK (octet_length(key) = 32),
    state      text COLLATE "C" NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, key)
);

-- The rejected webhook deliveries counted per window, by a bucket of the client address (a
-- number below 4097, so the table cannot outgrow that many rows however many addresses send;
-- the address itself is not kept). Each count is one INSERT ... ON CONFLICT DO UPDATE.
CREATE TABLE rejection_allowances (
    bucket       integer     PRIMARY KEY CHECK (bucket BETWEEN 0 AND 4096),
    window_start timestamptz NOT NULL,
    used         integer     NOT NULL CHECK (used >= 0)
);
