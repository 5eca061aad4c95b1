-- Webhook deliveries already received, so that a replayed one is refused:
-- the sender's delivery id (`X-GitHub-Delivery`) and the body's SHA-256
-- (the signature covers only the body, so the id alone is the sender's
-- word), each remembered for a day. Times are Unix milliseconds. Keep in
-- step with migrations/sqlite/0009_webhook_deliveries.sql.

CREATE TABLE webhook_deliveries (
    plugin       TEXT NOT NULL,
    name         TEXT NOT NULL,
    -- 'id:' and the delivery id, or 'sha256:' and the body's hex digest.
    delivery_key TEXT NOT NULL,
    seen_ms      BIGINT NOT NULL,
    PRIMARY KEY (plugin, name, delivery_key)
);

-- Entries older than a day are deleted as new deliveries arrive.
CREATE INDEX webhook_deliveries_seen ON webhook_deliveries (seen_ms);
