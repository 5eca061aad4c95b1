-- Audit hardening, PostgreSQL dialect. Keep in step with
-- migrations/sqlite/0002_audit_hardening.sql. Roles and privileges:
-- docs/operations.md.

-- Idempotency: the writer gives every entry a key and inserts with
-- ON CONFLICT (entry_id) DO NOTHING, so a batch retried after a timeout
-- (written, but the answer never came) is not written twice. Rows from
-- before this migration have none; NULLs never conflict.
ALTER TABLE audit_trail ADD COLUMN entry_id UUID;
CREATE UNIQUE INDEX audit_trail_entry_id ON audit_trail (entry_id);

-- A duration is never negative; such a row is a host bug, and the writer
-- sets it aside (below) instead of stopping the trail. NOT VALID: only new
-- rows are checked, the migration never fails on old ones.
ALTER TABLE audit_trail ADD CONSTRAINT audit_trail_duration_not_negative
    CHECK (duration_ms IS NULL OR duration_ms >= 0) NOT VALID;

-- Entries the database refused even after sanitising, for an operator to
-- inspect. `entry` is the whole entry as JSON text: TEXT and not JSONB,
-- because JSONB refuses the `\u0000` escape such an entry may hold.
CREATE TABLE audit_rejected (
    id          BIGSERIAL PRIMARY KEY,
    entry_id    UUID NOT NULL UNIQUE,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    error       TEXT NOT NULL,
    entry       TEXT NOT NULL
);

-- The retention the database enforces: no delete may reach a row younger
-- than `days`. One row. The worker sets it from AUDIT_RETENTION_DAYS when
-- its role may (the owner); the bot's role gets SELECT only, so its
-- password alone cannot shorten the retention.
CREATE TABLE audit_retention (
    id         BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    days       INTEGER NOT NULL CHECK (days BETWEEN 1 AND 36500),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO audit_retention (id, days) VALUES (TRUE, 30);

-- The trigger also holds a delete to the retention: setting
-- wasmbot.audit_cutoff by hand (set_config) opens the gate only for rows
-- older than the retention, never for newer ones.
CREATE OR REPLACE FUNCTION audit_trail_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cutoff TEXT := current_setting('wasmbot.audit_cutoff', true);
    oldest_kept TIMESTAMPTZ;
BEGIN
    IF TG_OP = 'DELETE' AND cutoff IS NOT NULL AND cutoff <> '' THEN
        SELECT now() - make_interval(days => r.days) INTO oldest_kept
        FROM audit_retention r;
        IF oldest_kept IS NOT NULL
           AND OLD.created_at < cutoff::timestamptz
           AND OLD.created_at < oldest_kept THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_trail is append-only';
END;
$$;

-- The one way to delete: rows older than `cutoff`, returning how many. A
-- cutoff newer than now() - retention is refused, whoever calls. SECURITY
-- DEFINER: it runs as the owner, so the bot's and the worker's roles need
-- EXECUTE on it and no DELETE on audit_trail at all.
CREATE OR REPLACE FUNCTION audit_trail_cleanup(cutoff TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    deleted BIGINT;
    retention_days INTEGER;
    oldest_kept TIMESTAMPTZ;
BEGIN
    SELECT r.days INTO retention_days FROM audit_retention r;
    IF retention_days IS NULL THEN
        RAISE EXCEPTION 'audit_trail_cleanup refused: audit_retention is empty';
    END IF;
    oldest_kept := now() - make_interval(days => retention_days);
    IF cutoff IS NULL OR cutoff > oldest_kept THEN
        RAISE EXCEPTION 'audit_trail_cleanup refused: cutoff % is newer than the retention of % days allows (%)',
            cutoff, retention_days, oldest_kept
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('wasmbot.audit_cutoff', cutoff::text, true);
    DELETE FROM audit_trail WHERE created_at < cutoff;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('wasmbot.audit_cutoff', '', true);
    RETURN deleted;
END;
$$;

-- Both functions resolve their tables in this schema only, with pg_temp
-- last: a temporary table named audit_retention cannot stand in for the
-- real one. The schema is the one these tables were created in.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION audit_trail_cleanup(timestamptz) SET search_path = %I, pg_temp',
        current_schema());
    EXECUTE format(
        'ALTER FUNCTION audit_trail_append_only() SET search_path = %I, pg_temp',
        current_schema());
END;
$$;

-- Functions are executable by PUBLIC by default; this one deletes as the
-- owner, so only roles granted EXECUTE (docs/operations.md) may call it.
REVOKE ALL ON FUNCTION audit_trail_cleanup(timestamptz) FROM PUBLIC;
