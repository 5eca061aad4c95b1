-- Storage quotas: what each plugin's state takes, kept beside the values so
-- a write can be checked against the plugin's quota in the same transaction
-- (the usage row is locked, so replicas sharing the database agree).
-- `size_bytes` is what a value counts for: its key and its JSON text.
ALTER TABLE plugin_state ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE plugin_state SET size_bytes = octet_length(key) + octet_length(value::text);

CREATE TABLE plugin_state_usage (
    plugin TEXT PRIMARY KEY,
    keys   BIGINT NOT NULL,
    bytes  BIGINT NOT NULL
);
INSERT INTO plugin_state_usage (plugin, keys, bytes)
    SELECT plugin, count(*), sum(size_bytes) FROM plugin_state GROUP BY plugin;
