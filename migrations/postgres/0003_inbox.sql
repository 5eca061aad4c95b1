-- The Telegram inbox: every update is kept here before Telegram is told it
-- was received, and handled from here (per chat, oldest first, one at a time
-- per chat across replicas). Keep in step with migrations/sqlite/0003_inbox.sql.

CREATE TABLE inbox (
    bot_id      BIGINT NOT NULL,
    update_id   BIGINT NOT NULL,
    chat_id     BIGINT NOT NULL,
    -- The update as Telegram sent it, JSON text (TEXT, not JSONB: a message
    -- may carry \u0000, which JSONB refuses).
    payload     TEXT NOT NULL,
    -- pending (waiting or leased), done, dead (failed too often; kept for the operator)
    status      TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    last_error  TEXT,
    PRIMARY KEY (bot_id, update_id)
);

-- Claims look for the oldest pending update of each chat.
CREATE INDEX inbox_pending ON inbox (bot_id, chat_id, update_id) WHERE status = 'pending';
-- Retention deletes finished rows by age.
CREATE INDEX inbox_finished ON inbox (finished_at) WHERE status <> 'pending';
