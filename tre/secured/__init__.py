"""The secured data layer: encrypted Parquet datasets and the keys that open them.

    keystore     master keys as 0600 files in TRE_HOME/keys (the embedded default)
    kms          pyarrow's KMS layer over the key store: who may unwrap which key
    arrow_types  the flat Arrow column types a dataset may hold, by canonical name
    sources      CSV / Parquet ingest sources, checked and streamed in batches
    ingest       source -> encrypted dataset version (data_root/<name>/v<version>/)
    reader       what Dask workers call: read granted columns of one fragment

Engines (`jobs`) use `tre.secured.reader` only; `ingest` belongs to the service layer.
Modules are imported directly (`from tre.secured.reader import read_fragment`) so a
worker that only reads does not import the ingest machinery.
"""
