-- Who holds each OAuth refresh lease (a fresh random id per lease taken):
-- only the holder may write the refreshed tokens or release the lease, so
-- a refresh that outlived its lease cannot overwrite the newer token of
-- the refresh that took the lease over. Keep in step with
-- migrations/sqlite/0010_oauth_lease_holder.sql.

ALTER TABLE oauth_credentials ADD COLUMN refresh_holder TEXT;
