-- Browser sessions signed out before their cookie expired. A session cookie is signed,
-- not stored, so without this table a copy of it would keep working after sign-out until
-- its expiry. One row per ended session, kept only until the cookie would have expired
-- anyway (then no request can present it, and the row is pruned).
CREATE TABLE ended_sessions (
    nonce TEXT PRIMARY KEY,                  -- the cookie's random nonce (not a credential)
    token_id TEXT NOT NULL,                  -- public id of the token the session was made with
    ended_at TEXT NOT NULL,
    expires_at TEXT NOT NULL                 -- the cookie's own expiry: prune after it
);
CREATE INDEX ended_sessions_expires ON ended_sessions(expires_at);
