-- Which instance (INSTANCE_ID, the host name by default) holds each lease,
-- beside the run (lease_owner) that took it: a process restarted after a
-- crash takes back its own instance's leases at once instead of waiting
-- for them to run out. Keep in step with migrations/sqlite/0008_inbox_instance.sql.

ALTER TABLE inbox ADD COLUMN lease_instance TEXT;
