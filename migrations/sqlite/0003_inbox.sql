-- The Telegram inbox: every update is kept here before Telegram is told it
-- was received, and handled from here (per chat, oldest first, one at a time
-- per chat). Keep in step with migrations/postgres/0003_inbox.sql.

CREATE TABLE inbox (
    bot_id      INTEGER NOT NULL,
    update_id   INTEGER NOT NULL,
    chat_id     INTEGER NOT NULL,
    -- The update as Telegram sent it, JSON text.
    payload     TEXT NOT NULL,
    -- pending (waiting or leased), done, dead (failed too often; kept for the operator)
    status      TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    received_at TEXT NOT NULL,
    finished_at TEXT,
    last_error  TEXT,
    PRIMARY KEY (bot_id, update_id)
);

CREATE INDEX inbox_pending ON inbox (bot_id, chat_id, update_id) WHERE status = 'pending';
CREATE INDEX inbox_finished ON inbox (finished_at) WHERE status <> 'pending';
