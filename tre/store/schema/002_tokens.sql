-- API tokens: issued to a person by an admin, stored only as a hash, revocable, expiring.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,                     -- public part of the token (tre_<id>_<secret>)
    person TEXT NOT NULL REFERENCES people(name),
    hash TEXT NOT NULL,                      -- sha256 of the whole token, hex
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE INDEX api_tokens_person ON api_tokens(person);
