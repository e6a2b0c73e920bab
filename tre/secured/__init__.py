"""The secured data layer: encrypted Parquet datasets, written once and read by grant.

    arrow_types    the flat Arrow column types a dataset may hold, by canonical name
    sources        CSV / Parquet files (or folders of them) checked and streamed in batches
    source_paths   opening a source without following links out of where it was named
    source_errors  what is wrong with a source, named by column, type and row
    parts          the layout on disk: parts, row groups, partitions, statistics
    ingest         source -> encrypted dataset version (data_root/<name>/v<version>/)
    verify         re-check a version's files against the catalog's checksums
    reader         what Dask workers call: read granted columns of one fragment (pyarrow)
    frames         the same reads into polars, with filters pushed into the read

Engines (`jobs`) use `tre.secured.reader` and `tre.secured.frames` only; `ingest`,
`verify` and `sources` belong to the service layer. The keys that encrypt and open the
files are another package, `tre.keys`: this one imports it (its `kms`, `keysystems` and
`masterkeys`), never the other way round. Modules are imported directly
(`from tre.secured.reader import read_fragment`) so a worker that only reads does not
import the ingest machinery. See docs/keys.md.
"""
