-- OAuth 2 credentials (`wasmbot oauth add`): how to reach each provider
-- and where the tokens stand. The tokens and the client secret are not
-- here: they are one encrypted credential, `oauth:NAME`, in `credentials`
-- (so `secrets rotate-key` re-encrypts them with the rest). Times are Unix
-- milliseconds. Keep in step with migrations/sqlite/0007_oauth.sql.

CREATE TABLE oauth_credentials (
    name              TEXT PRIMARY KEY,
    -- 'google', 'github' or 'custom': where the defaults came from.
    provider          TEXT NOT NULL,
    auth_url          TEXT NOT NULL,
    token_url         TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    -- Space-separated, as granted.
    scopes            TEXT NOT NULL,
    -- When the access token stops working (NULL: the provider did not say).
    expires_ms        BIGINT,
    -- When the current access token was obtained.
    refreshed_ms      BIGINT NOT NULL,
    -- 'ok', or 'reauthorize' once the provider refused the refresh token.
    status            TEXT NOT NULL DEFAULT 'ok',
    -- Why, for `oauth list` (the provider's error, never a token).
    detail            TEXT,
    -- Single-flight refresh: whoever holds this lease refreshes; the others
    -- wait for the new token. A crashed holder's lease runs out.
    refreshing_until_ms BIGINT,
    created_ms        BIGINT NOT NULL
);
