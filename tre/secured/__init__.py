"""The secured data layer: encrypted Parquet datasets and the keys that open them.

    masterkeys   the key-management interface, and the local key store behind it
    pkcs11keys   the same interface on a PKCS#11 HSM (SoftHSM in tests)
    keystore     0600 key files in TRE_HOME/keys (what the local master keys are kept in)
    grants       signed, expiring, revocable key grants: which master keys a job may use
    kms          pyarrow's KMS layer over the master keys; key ids; rotation
    arrow_types  the flat Arrow column types a dataset may hold, by canonical name
    sources      CSV / Parquet files (or folders of them) checked and streamed in batches
    parts        the layout on disk: parts, row groups, partitions, statistics
    ingest       source -> encrypted dataset version (data_root/<name>/v<version>/)
    verify       re-check a version's files against the catalog's checksums
    reader       what Dask workers call: read granted columns of one fragment (pyarrow)
    frames       the same reads into polars, with filters pushed into the read

Engines (`jobs`) use `tre.secured.reader` and `tre.secured.frames` only; `ingest`,
`verify` and key management belong to the service layer. Modules are imported directly
(`from tre.secured.reader import read_fragment`) so a worker that only reads does not
import the ingest machinery. See docs/keys.md.
"""
