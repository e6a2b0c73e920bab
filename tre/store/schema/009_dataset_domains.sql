-- The range of values each column of a dataset version holds, noted at ingest
-- (tre.secured.domains) for the disclosure check's reading of filters. It can hold one
-- person's value (a number column's largest), so no command, page or API shows it:
-- only tre.service.populations reads it. Versions ingested before this table have no
-- row, and their filters are read without a range.
CREATE TABLE dataset_domains (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,                      -- JSON, tre.secured.domains.ColumnDomains.record
    PRIMARY KEY (name, version)
);
