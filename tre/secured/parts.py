"""How an ingest lays a dataset version out on disk: parts, row groups and partitions.

    <version>/part-00000.parquet                       unpartitioned
    <version>/incident_month=2025-01/part-00000.parquet  partitioned on incident_month

Each part holds at most `rows_per_file` rows in row groups of exactly `rows_per_group`
(the last of a file, or of a partition, may be smaller): row groups are what a job's
tasks read, so their size sets the work per task. A partition's rows are in its own
parts, and the partition column stays inside the files too, so a reader needs nothing
special; the folder names let a reader skip whole partitions.

Partition values are plaintext folder names, visible to anyone who can list the data
root, so only `attribute` columns of a few flat types may partition (`partition_
problems`). Statistics (min/max for predicate pushdown) are written for attribute
columns only: the minimum and maximum of an identifier are real people's values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tre.keys.kms import key_material_path, private
from tre.models import ColumnInfo, DataFile, Sensitivity

__all__ = [
    "MAX_PARTITIONS",
    "PartWriter",
    "partition_folder",
    "partition_problems",
    "split_partitions",
    "statistics_columns",
]

#: Each partition has a writer open during ingest; more than this is the wrong column.
MAX_PARTITIONS = 1000
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_PARTITION_TYPES = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"string", "bool", "date32[day]"}
)
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

#: Opens the writer of one part file (encryption properties are per file).
OpenPart = Callable[[Path], pq.ParquetWriter]


def partition_problems(columns: Sequence[ColumnInfo], partition_by: Sequence[str]) -> list[str]:
    """Every reason `partition_by` cannot partition a dataset with `columns`."""
    known = {c.name: c for c in columns}
    problems = []
    if len(set(partition_by)) != len(partition_by):
        problems.append("a partition column is listed more than once")
    for name in dict.fromkeys(partition_by):
        column = known.get(name)
        if column is None:
            problems.append(f"{name!r} is not a column (columns: {', '.join(known)})")
        elif column.sensitivity is not Sensitivity.ATTRIBUTE:
            problems.append(
                f"{name!r} is {column.sensitivity.value}: partition values become plaintext "
                "folder names, so only attribute columns may partition a dataset"
            )
        elif column.type not in _PARTITION_TYPES:
            problems.append(
                f"{name!r} is {column.type}; partition on a whole-number, text, boolean "
                "or date column"
            )
    if partition_by and len(set(partition_by)) >= len(columns):
        problems.append("at least one column must not be a partition column")
    return problems


def statistics_columns(columns: Sequence[ColumnInfo]) -> list[str]:
    """Columns whose min/max statistics are written: attribute columns only."""
    return [c.name for c in columns if c.sensitivity is Sensitivity.ATTRIBUTE]


def _encode(value: object) -> str:
    if value is None:
        return NULL_PARTITION
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    # Percent-encode everything but letters, digits, '_' and '-': no '/', no '.', no '..'.
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode("utf-8"))


def partition_folder(partition_by: Sequence[str], values: Sequence[object]) -> str:
    """The relative folder of one partition, e.g. 'month=2025-01/area=Halton'."""
    return "/".join(f"{n}={_encode(v)}" for n, v in zip(partition_by, values, strict=True))


def split_partitions(
    table: pa.Table, partition_by: Sequence[str]
) -> Iterator[tuple[tuple[object, ...], pa.Table]]:
    """The rows of `table` grouped by their partition values (order kept within each)."""
    if not partition_by:
        yield (), table
        return
    codes = np.zeros(table.num_rows, dtype=np.int64)
    for name in partition_by:
        encoded = pc.dictionary_encode(table[name], null_encoding="encode").combine_chunks()
        indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        codes = codes * max(len(encoded.dictionary), 1) + indices
    order = np.argsort(codes, kind="stable")
    runs = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    for run in runs:
        if len(run):
            part = table.take(pa.array(run))
            yield tuple(part[name][0].as_py() for name in partition_by), part


class PartWriter:
    """Writes one folder's part files in exactly sized row groups; gives their DataFiles."""

    def __init__(
        self,
        folder: Path,
        rel: str,
        schema: pa.Schema,
        open_part: OpenPart,
        rows_per_group: int,
        rows_per_file: int,
    ) -> None:
        self.folder, self.rel, self.schema = folder, rel, schema
        self.open_part = open_part
        self.rows_per_group = min(rows_per_group, rows_per_file)
        self.rows_per_file = rows_per_file
        self.files: list[DataFile] = []
        self._pending: list[pa.Table] = []
        self._have = 0
        self._writer: pq.ParquetWriter | None = None
        self._path = folder
        self._groups: list[int] = []

    def _next_size(self) -> int:
        return min(self.rows_per_group, self.rows_per_file - sum(self._groups))

    def add(self, table: pa.Table) -> None:
        """Buffer `table`; write every row group that is now full."""
        self._pending.append(table)
        self._have += table.num_rows
        while self._have >= self._next_size():
            self._write(self._next_size())

    def _write(self, size: int) -> None:
        table = pa.concat_tables(self._pending)
        group, rest = table.slice(0, size), table.slice(size)
        self._pending, self._have = ([rest] if rest.num_rows else []), rest.num_rows
        if self._writer is None:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._path = self.folder / f"part-{len(self.files):05d}.parquet"
            self._writer = self.open_part(self._path)
        self._writer.write_table(group, row_group_size=size)
        self._groups.append(size)
        if sum(self._groups) >= self.rows_per_file:
            self._close()

    def _close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        private(key_material_path(self._path))
        name = self._path.name
        self.files.append(_describe(self._path, f"{self.rel}/{name}", self._groups))
        self._groups = []

    def finish(self) -> list[DataFile]:
        """Write what is left and close the last file; the DataFiles, in order."""
        if self._have:
            self._write(self._have)
        self._close()
        return self.files

    def abort(self) -> None:
        """Close an open file without describing it (the caller removes the folder)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _describe(path: Path, rel: str, groups: list[int]) -> DataFile:
    """The part's registry entry; hashing it also syncs it to disk."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        with os.fdopen(os.dup(fd), "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    finally:
        os.close(fd)
    return DataFile(path=rel, sha256=digest.hexdigest(), rows=sum(groups), row_groups=groups)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
