-- wasmbot schema, SQLite dialect (the embedded default). Keep in step with
-- migrations/postgres/0001_init.sql. Timestamps are RFC 3339 UTC text written
-- by the host, so they sort and compare as text.

CREATE TABLE credentials (
    name        TEXT PRIMARY KEY NOT NULL,
    ciphertext  BLOB NOT NULL,
    nonce       BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE plugin_state (
    plugin     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plugin, key)
);

CREATE TABLE audit_trail (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at     TEXT NOT NULL,
    correlation_id TEXT,
    user_id        INTEGER,
    chat_id        INTEGER,
    plugin         TEXT,
    action         TEXT NOT NULL,
    source         TEXT NOT NULL,
    model          TEXT,
    status         TEXT NOT NULL,
    error          TEXT,
    duration_ms    REAL,
    metadata       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_trail_created_at ON audit_trail (created_at);
CREATE INDEX audit_trail_correlation_id ON audit_trail (correlation_id);

-- Append-only: the database refuses UPDATE, and DELETE except of rows older
-- than the cutoff the retention job sets inside its own transaction.
CREATE TABLE audit_retention_gate (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    cutoff TEXT
);
INSERT INTO audit_retention_gate (id, cutoff) VALUES (1, NULL);

CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only');
END;

CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail
WHEN (SELECT cutoff FROM audit_retention_gate WHERE id = 1) IS NULL
  OR OLD.created_at >= (SELECT cutoff FROM audit_retention_gate WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only');
END;
