-- Conversations (WIT 0.2): what the host keeps between one event and the
-- next, so buttons, questions and message ownership survive a restart.
-- Times are Unix seconds.

-- A button a plugin attached to a message: Telegram gets only `token`
-- (its callback_data is 64 bytes at most); the plugin's data stays here.
CREATE TABLE chat_buttons (
    token      TEXT PRIMARY KEY,
    plugin     TEXT NOT NULL,
    chat_id    BIGINT NOT NULL,
    data       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX chat_buttons_expiry ON chat_buttons (expires_at);

-- The one question (`ask`) a chat's next message answers (in a group, the
-- next message of the user who was asked).
CREATE TABLE chat_prompts (
    chat_id    BIGINT PRIMARY KEY,
    plugin     TEXT NOT NULL,
    user_id    BIGINT NOT NULL,
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Which plugin sent which message: a plugin edits and deletes only its own,
-- by id or by a name of its own (`outgoing.name`).
CREATE TABLE chat_messages (
    chat_id    BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    plugin     TEXT NOT NULL,
    sent_at    BIGINT NOT NULL,
    name       TEXT,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX chat_messages_age ON chat_messages (sent_at);
CREATE INDEX chat_messages_name ON chat_messages (chat_id, plugin, name);
