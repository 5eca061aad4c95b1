-- Jobs (WIT 0.2 `schedule`) and webhook deliveries: what comes due is handed
-- to its plugin's `on-event` by the one process running jobs for its
-- channel, at least once, and taken out only after its actions were
-- delivered. Times are Unix milliseconds. Keep in step with
-- migrations/sqlite/0006_scheduled_jobs.sql.

CREATE TABLE scheduled_jobs (
    id             BIGSERIAL PRIMARY KEY,
    plugin         TEXT NOT NULL,
    -- Which processes fire it: those serving this channel ('telegram', 'console').
    channel        TEXT NOT NULL,
    -- The chat its messages go to; NULL: the admin chat.
    chat_id        BIGINT,
    -- Who added it (NULL for a webhook delivery).
    user_id        BIGINT,
    -- 'at' (once), 'cron' (until cancelled), 'webhook' (one delivery).
    kind           TEXT NOT NULL,
    -- 'cron': {"expression", "time_zone"} as JSON text; NULL otherwise.
    spec           TEXT,
    -- The plugin's payload (a webhook's: its name, headers and body as JSON).
    payload        TEXT NOT NULL,
    due_ms         BIGINT NOT NULL,
    -- active (waiting, leased or being retried), dead (set aside after failing).
    status         TEXT NOT NULL DEFAULT 'active',
    -- Attempts at the current occurrence.
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    -- While leased: when the lease runs out; after a failure: not before.
    lease_until_ms BIGINT,
    last_error     TEXT,
    created_ms     BIGINT NOT NULL
);

-- The runner looks for the soonest active job of its channel.
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (channel, due_ms) WHERE status = 'active';
-- Quotas and `schedule.list` count a plugin's jobs.
CREATE INDEX scheduled_jobs_plugin ON scheduled_jobs (plugin, status);

-- Inbound webhooks the operator added (`wasmbot hooks add`); the signing
-- secret is a vault credential named `hook:PLUGIN/NAME`.
CREATE TABLE webhooks (
    plugin     TEXT NOT NULL,
    name       TEXT NOT NULL,
    -- Where deliveries' messages go; NULL: the admin chat.
    chat_id    BIGINT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (plugin, name)
);
