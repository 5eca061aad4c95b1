-- The assistant's tool calls, append-only and two rows per call: a
-- started row (parent_id NULL) written before the tool runs and never
-- updated, and a completion row whose parent_id is the started row's id.
-- A call killed mid-way leaves its started row alone. turn_key names the
-- user's message (channel, chat, message) so that a redelivered update
-- reuses completed results instead of running a tool again. Times are Unix
-- milliseconds. Keep in step with migrations/postgres/0011_tool_calls.sql.

CREATE TABLE tool_calls (
    id             TEXT PRIMARY KEY,
    parent_id      TEXT REFERENCES tool_calls (id),
    correlation_id TEXT NOT NULL,
    turn_key       TEXT,
    chat_id        BIGINT NOT NULL,
    user_id        BIGINT NOT NULL,
    plugin         TEXT NOT NULL,
    tool           TEXT NOT NULL,
    -- Started rows: the input; completion rows: the output (JSON).
    payload        TEXT NOT NULL,
    -- Completion rows: ok, error, denied or timeout.
    status         TEXT,
    duration_ms    DOUBLE PRECISION,
    at_ms          BIGINT NOT NULL
);

CREATE INDEX tool_calls_chat ON tool_calls (chat_id, at_ms);
CREATE INDEX tool_calls_turn ON tool_calls (turn_key);
CREATE INDEX tool_calls_parent ON tool_calls (parent_id);

-- A turn waiting for the user to allow (or deny) a tool: what Claude said
-- so far and what is left to run, kept until the answer or expires_ms.
CREATE TABLE agent_pauses (
    id         TEXT PRIMARY KEY,
    chat_id    BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    turn       TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);

CREATE INDEX agent_pauses_expiry ON agent_pauses (expires_ms);
