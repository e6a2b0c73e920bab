-- The first schema: people, projects, datasets, jobs, outputs, reviews, releases, audit.
CREATE TABLE people (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL                       -- Person as JSON
);
CREATE TABLE projects (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    body TEXT NOT NULL                       -- Project as JSON
);
CREATE TABLE datasets (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,                      -- Dataset as JSON
    PRIMARY KEY (name, version)
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    submitter TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL                       -- Job as JSON (state duplicated for queries)
);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_project ON jobs(project);
CREATE TABLE output_requests (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
    body TEXT NOT NULL                       -- OutputRequest as JSON
);
CREATE TABLE reviews (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    output TEXT NOT NULL,
    checker TEXT NOT NULL,
    body TEXT NOT NULL,                      -- Review as JSON
    PRIMARY KEY (job_id, output, checker)
);
CREATE TABLE releases (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
    body TEXT NOT NULL                       -- release manifest as JSON
);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- The audit log is append-only: the store refuses to change or delete an event.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
