-- People who may use the console. Email is compared case-insensitively because people type it both ways.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- bumped on password, role or status change so that live sessions notice and are re-checked
    auth_version  INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_login_at TEXT
);

-- Credentials edited in the console. Values are AEAD ciphertext bound to their key; never plaintext.
CREATE TABLE credentials (
    key        TEXT    PRIMARY KEY NOT NULL,
    ciphertext TEXT    NOT NULL,
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_by INTEGER REFERENCES users (id) ON DELETE SET NULL
);

-- Who did what and when. Details never carry a secret or a password.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor_email TEXT,
    action      TEXT    NOT NULL,
    target      TEXT,
    detail      TEXT    NOT NULL DEFAULT '',
    client_ip   TEXT
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_action ON audit_log (action, id DESC);
