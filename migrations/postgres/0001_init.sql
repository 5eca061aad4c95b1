-- wasmbot schema, PostgreSQL dialect. Keep in step with
-- migrations/sqlite/0001_init.sql.

CREATE TABLE credentials (
    name        TEXT PRIMARY KEY,
    ciphertext  BYTEA NOT NULL,
    nonce       BYTEA NOT NULL,
    key_version INTEGER NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE plugin_state (
    plugin     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (plugin, key)
);

CREATE TABLE audit_trail (
    id             BIGSERIAL PRIMARY KEY,
    created_at     TIMESTAMPTZ NOT NULL,
    correlation_id TEXT,
    user_id        BIGINT,
    chat_id        BIGINT,
    plugin         TEXT,
    action         TEXT NOT NULL,
    source         TEXT NOT NULL,
    model          TEXT,
    status         TEXT NOT NULL,
    error          TEXT,
    duration_ms    DOUBLE PRECISION,
    metadata       JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_trail_created_at ON audit_trail (created_at);
CREATE INDEX audit_trail_correlation_id ON audit_trail (correlation_id);

-- Append-only: UPDATE and TRUNCATE are refused; DELETE only of rows older
-- than the cutoff that audit_trail_cleanup() sets for its own transaction.
CREATE FUNCTION audit_trail_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cutoff TEXT := current_setting('wasmbot.audit_cutoff', true);
BEGIN
    IF TG_OP = 'DELETE' AND cutoff IS NOT NULL AND cutoff <> ''
       AND OLD.created_at < cutoff::timestamptz THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_trail is append-only';
END;
$$;

CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only();

CREATE FUNCTION audit_trail_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only';
END;
$$;

CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_refuse_truncate();

-- The one way to delete: rows older than `cutoff`, returning how many.
CREATE FUNCTION audit_trail_cleanup(cutoff TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    deleted BIGINT;
BEGIN
    PERFORM set_config('wasmbot.audit_cutoff', cutoff::text, true);
    DELETE FROM audit_trail WHERE created_at < cutoff;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('wasmbot.audit_cutoff', '', true);
    RETURN deleted;
END;
$$;
