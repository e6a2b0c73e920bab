-- Key grants (issue 5): one row per signed grant the service issued, so admins can list
-- them, revoke them, and see why they ended. The token itself is never stored: it is a
-- credential, kept only in the job's input. Revocation is mirrored as a file in
-- TRE_HOME/keys/revoked/ (what workers check); this table is the record.
CREATE TABLE key_grants (
    id TEXT PRIMARY KEY,                     -- grant id, also in the token's claims
    job_id INTEGER REFERENCES jobs(id),      -- NULL for a grant an admin made by hand
    project TEXT,                            -- NULL for a grant not made for a project
    holder TEXT NOT NULL,                    -- "job 12", or the admin and purpose
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_reason TEXT,
    body TEXT NOT NULL                       -- {datasets: {name: {version, columns}}, keys: [...]}
);
CREATE INDEX key_grants_job ON key_grants(job_id);
CREATE INDEX key_grants_project ON key_grants(project);
CREATE INDEX key_grants_active ON key_grants(revoked_at, expires_at);
