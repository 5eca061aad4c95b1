-- Storage quotas: what each plugin's state takes, kept beside the values so
-- a write can be checked against the plugin's quota in the same transaction.
-- `size_bytes` is what a value counts for: its key and its JSON text.
ALTER TABLE plugin_state ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE plugin_state SET size_bytes = length(CAST(key AS BLOB)) + length(CAST(value AS BLOB));

CREATE TABLE plugin_state_usage (
    plugin TEXT PRIMARY KEY,
    keys   INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
);
INSERT INTO plugin_state_usage (plugin, keys, bytes)
    SELECT plugin, count(*), sum(size_bytes) FROM plugin_state GROUP BY plugin;
