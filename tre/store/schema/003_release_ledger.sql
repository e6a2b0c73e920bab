-- The release ledger: every table a project has released, as published (the released
-- counts and which cells were suppressed; no evidence), one row per released table. It
-- is written in the same transaction as the release and read when a later request of
-- the project is checked for differencing (disclosure.differencing). Append-only.
CREATE TABLE released_tables (
    project TEXT NOT NULL,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    output TEXT NOT NULL,
    released_at TEXT NOT NULL,
    body TEXT NOT NULL,                      -- disclosure.differencing.PublishedTable JSON
    PRIMARY KEY (job_id, output)
);
CREATE INDEX released_tables_project ON released_tables(project);
CREATE TRIGGER released_tables_no_update BEFORE UPDATE ON released_tables
    BEGIN SELECT RAISE(ABORT, 'the release ledger is append-only'); END;
CREATE TRIGGER released_tables_no_delete BEFORE DELETE ON released_tables
    BEGIN SELECT RAISE(ABORT, 'the release ledger is append-only'); END;
