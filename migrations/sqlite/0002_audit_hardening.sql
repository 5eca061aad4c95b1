-- Audit hardening, SQLite dialect. Keep in step with
-- migrations/postgres/0002_audit_hardening.sql. SQLite has no roles: these
-- guard against mistakes and bugs, not against someone who can write the
-- file.

-- Idempotency: every entry is inserted under its key with
-- ON CONFLICT (entry_id) DO NOTHING, so a retried batch is written once.
ALTER TABLE audit_trail ADD COLUMN entry_id TEXT;
CREATE UNIQUE INDEX audit_trail_entry_id ON audit_trail (entry_id);

-- A duration is never negative (the PostgreSQL CHECK constraint's twin;
-- SQLite cannot add a CHECK to an existing table).
CREATE TRIGGER audit_trail_duration_not_negative BEFORE INSERT ON audit_trail
WHEN NEW.duration_ms < 0
BEGIN
    SELECT RAISE(ABORT, 'audit_trail: duration_ms must not be negative');
END;

-- Entries the database refused even after sanitising; `entry` is the
-- whole entry as JSON text.
CREATE TABLE audit_rejected (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id    TEXT NOT NULL UNIQUE,
    rejected_at TEXT NOT NULL,
    error       TEXT NOT NULL,
    entry       TEXT NOT NULL
);

-- The retention the database enforces on deletes; the worker sets it from
-- AUDIT_RETENTION_DAYS.
CREATE TABLE audit_retention (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    days       INTEGER NOT NULL CHECK (days BETWEEN 1 AND 36500),
    updated_at TEXT
);
INSERT INTO audit_retention (id, days) VALUES (1, 30);

-- The gate may not open past the retention: a cutoff newer than
-- now - days is refused, whoever sets it. julianday() compares the host's
-- RFC 3339 text and SQLite's clock as instants (the text forms differ).
CREATE TRIGGER audit_retention_gate_within_retention
BEFORE UPDATE OF cutoff ON audit_retention_gate
WHEN NEW.cutoff IS NOT NULL
 AND NOT coalesce(
        julianday(NEW.cutoff) <= (SELECT julianday('now', printf('-%d days', days))
                                  FROM audit_retention WHERE id = 1),
        0)
BEGIN
    SELECT RAISE(ABORT, 'audit cleanup refused: the cutoff is newer than the retention allows');
END;

-- A delete passes only for rows older than both the gate's cutoff and the
-- retention, so an opened gate never reaches a row younger than `days`.
DROP TRIGGER audit_trail_no_delete;
CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail
WHEN NOT coalesce(
        OLD.created_at < (SELECT cutoff FROM audit_retention_gate WHERE id = 1)
        AND julianday(OLD.created_at) < (SELECT julianday('now', printf('-%d days', days))
                                         FROM audit_retention WHERE id = 1),
        0)
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only');
END;
