"""Ingest sources: CSV or Parquet files read as a stream of checked record batches.

A source is one file, or a folder of them (searched recursively, read in name order):
every file of a folder must have the same columns. Without a descriptor the types are
inferred from the first file and every other file must convert to them, so a folder
reads as one table; `infer_descriptor` shows what was inferred, for a person to
confirm (or correct in a descriptor) before anything is written.

`open_source` does every check that can be done before any data is written: the file
exists, is non-empty and of a known kind; its column names are valid and (with a
descriptor) exactly the declared ones; each column can be converted to its declared
type. Values that fail to convert can only be found by reading them, so `batches()`
raises `InputError` for those, naming the file, the column, the declared type and the
row where it can be found. No error ever quotes a value or a line of the source: the
parsers' own messages do, so they are never passed on.

Which files are read, and how they are opened so that a symlink cannot lead elsewhere,
is `tre.secured.source_paths`.

Without a descriptor, types are inferred (a CSV from its first block, Parquet from
its schema) and every column is given the `attribute` sensitivity.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from tre.errors import InputError
from tre.models import ColumnInfo, DatasetDescriptor, Sensitivity
from tre.names import check_name
from tre.secured.arrow_types import normalise, parse_type, type_name
from tre.secured.source_errors import csv_errors, first_bad
from tre.secured.source_paths import (
    SUFFIXES,
    folder_files,
    open_checked,
    readable_file,
    source_folder,
)

__all__ = ["SUFFIXES", "Source", "infer_descriptor", "open_source", "source_files"]

#: CSV types are inferred from the first block, so a big block infers from more rows.
CSV_BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 256 * 1024

_CSV_OPTIONS = {"block_size": CSV_BLOCK_BYTES}


@dataclass
class Source:
    """An opened source: the dataset's columns and a one-shot stream of batches."""

    path: Path
    columns: list[ColumnInfo]
    schema: pa.Schema
    total_rows: int | None  # None for CSV: counting would mean reading it twice
    _stream: Callable[[], Iterator[pa.RecordBatch]]

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Record batches with exactly `schema`; InputError for a value that will not fit."""
        return self._stream()


def open_source(path: Path, descriptor: DatasetDescriptor | None) -> Source:
    """Open and check `path` (.csv, .parquet, or a folder of them) against `descriptor`,
    reading no data."""
    path = Path(path)
    if source_folder(path) is not None:
        return _open_folder(path, descriptor)
    return _open_file(path, readable_file(path), descriptor)


def infer_descriptor(path: Path) -> DatasetDescriptor:
    """What tre would ingest `path` as without a descriptor: inferred types, and every
    column an attribute. Nothing is written."""
    return DatasetDescriptor(columns=open_source(Path(path), None).columns)


def source_files(folder: Path) -> list[Path]:
    """The files a folder source is made of, in name order; InputError if there are
    none, if there are files tre cannot ingest (rather than silently skip them), or
    symlinks that lead outside the folder."""
    return [name for name, _ in folder_files(folder)]


def _open_folder(folder: Path, descriptor: DatasetDescriptor | None) -> Source:
    files = folder_files(folder)
    first = _open_file(*files[0], descriptor)
    # Later files are held to the first file's types (declared, or inferred from it).
    declared = descriptor or DatasetDescriptor(columns=first.columns)
    opened = [first] + [_open_file(name, real, declared) for name, real in files[1:]]
    totals = [o.total_rows for o in opened]

    def stream() -> Iterator[pa.RecordBatch]:
        for each in opened:
            yield from each.batches()

    total = None if any(t is None for t in totals) else sum(t or 0 for t in totals)
    return Source(folder, first.columns, first.schema, total, stream)


def _open_file(path: Path, real: Path, descriptor: DatasetDescriptor | None) -> Source:
    """Open the source file named `path`, read at `real` (its target, if a link)."""
    if real.lstat().st_size == 0:
        raise InputError(
            f"the source file {path} is empty",
            fix="check the export that made it finished; a CSV needs a header row and data",
        )
    if real.suffix.lower() == ".csv":
        return _open_csv(path, real, descriptor)
    return _open_parquet(path, real, descriptor)


def _declared(descriptor: DatasetDescriptor) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {}
    problems = []
    for column in descriptor.columns:
        try:
            types[column.name] = parse_type(column.type)
        except ValueError as exc:
            problems.append(f"column {column.name!r}: {exc}")
    if problems:
        raise InputError(
            "the descriptor declares types tre cannot store",
            reasons=problems,
            fix="correct the types in the descriptor",
        )
    return types


def _check_names(path: Path, names: list[str], descriptor: DatasetDescriptor | None) -> None:
    """Every column-name problem at once: bad, duplicated, missing, unexpected."""
    problems = []
    for name in dict.fromkeys(names):
        try:
            check_name(name, "column")
        except ValueError as exc:
            problems.append(str(exc))
        if names.count(name) > 1:
            problems.append(f"column {name!r} appears {names.count(name)} times")
    if descriptor is not None:
        declared = [c.name for c in descriptor.columns]
        problems += [
            f"column {n!r} is in the descriptor but missing from the source"
            for n in declared
            if n not in names
        ]
        problems += [
            f"column {n!r} is in the source but not in the descriptor"
            for n in dict.fromkeys(names)
            if n not in declared
        ]
    if problems:
        fix = (
            "make the source's header and the descriptor list the same columns"
            if descriptor is not None
            else "rename the columns in the source"
        )
        raise InputError(
            f"the columns of {path.name} cannot be ingested", reasons=problems, fix=fix
        )


def _columns(
    names: list[str], types: dict[str, pa.DataType], descriptor: DatasetDescriptor | None
) -> tuple[list[ColumnInfo], pa.Schema]:
    if descriptor is None:
        # Unknown sensitivity is treated as the least sensitive class; the CLI warns.
        infos = [
            ColumnInfo(name=n, type=type_name(types[n]), sensitivity=Sensitivity.ATTRIBUTE)
            for n in names
        ]
    else:
        infos = [
            c.model_copy(update={"type": type_name(types[c.name])}) for c in descriptor.columns
        ]
    schema = pa.schema([pa.field(c.name, types[c.name]) for c in infos])
    return infos, schema


# --- CSV ---------------------------------------------------------------------------


def _csv_header(path: Path, real: Path) -> list[str]:
    try:
        with open_checked(real) as raw, io.TextIOWrapper(raw, "utf-8-sig", newline="") as text:
            return next(csv.reader(text), [])
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the CSV file {path.name} cannot be read: its header is not UTF-8 CSV text",
            reasons=[f"byte {exc.start + 1} of the file is not UTF-8"],
            fix="export the file as UTF-8 CSV with a header row of column names",
        ) from exc
    except csv.Error as exc:
        raise InputError(
            f"the CSV file {path.name} cannot be read: its header is not UTF-8 CSV text",
            reasons=["the first line is not a CSV row"],
            fix="export the file as UTF-8 CSV with a header row of column names",
        ) from exc


def _open_csv(path: Path, real: Path, descriptor: DatasetDescriptor | None) -> Source:
    names = _csv_header(path, real)
    if not any(names):
        raise InputError(
            f"the CSV file {path.name} has no header row",
            fix="put the column names on the first line",
        )
    _check_names(path, names, descriptor)
    declared = _declared(descriptor) if descriptor is not None else None

    def reader(handle: BinaryIO, types: dict[str, pa.DataType]) -> pcsv.CSVStreamingReader:
        return pcsv.open_csv(
            handle,
            read_options=pcsv.ReadOptions(**_CSV_OPTIONS),
            convert_options=pcsv.ConvertOptions(column_types=types),
        )

    # The first block is read here, so its problems are found before anything is written.
    with open_checked(real) as handle, csv_errors(path, real, names, declared is not None):
        found = reader(handle, declared or {}).schema
    if declared is not None:
        types = declared
    else:
        types, problems = {}, []
        for field in found:
            if pa.types.is_null(field.type):
                types[field.name] = pa.string()  # empty in the first block: keep as text
            elif (kept := normalise(field.type)) is not None:
                types[field.name] = kept
            else:
                problems.append(f"column {field.name!r} was read as {field.type}")
        if problems:
            raise InputError(
                f"tre cannot store some columns of {path.name}",
                reasons=problems,
                fix="declare the columns' types in a descriptor",
            )
    infos, schema = _columns(names, types, descriptor)

    def stream() -> Iterator[pa.RecordBatch]:
        with open_checked(real) as handle, csv_errors(path, real, names, declared is not None):
            offset = 0
            for batch in reader(handle, types):
                yield _conform(path, batch, schema, descriptor, offset)
                offset += batch.num_rows

    return Source(path, infos, schema, None, stream)


# --- Parquet -----------------------------------------------------------------------


def _open_parquet(path: Path, real: Path, descriptor: DatasetDescriptor | None) -> Source:
    try:
        with open_checked(real) as handle, pq.ParquetFile(handle) as parquet:
            source_schema = parquet.schema_arrow
            total = parquet.metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"{path.name} is not a readable Parquet file",
            reasons=[f"its footer or schema cannot be read ({type(exc).__name__})"],
            fix="give an unencrypted, complete Parquet file (or a CSV)",
        ) from exc
    names = list(source_schema.names)
    _check_names(path, names, descriptor)
    found = {f.name: f.type for f in source_schema}
    problems = []
    if descriptor is not None:
        types = _declared(descriptor)
        for name, dtype in types.items():
            if found[name] != dtype and not _castable(found[name], dtype):
                problems.append(
                    f"column {name!r} is declared {dtype} but the source has "
                    f"{found[name]}, which cannot be converted to it"
                )
    else:
        types = {}
        for name, dtype in found.items():
            if (kept := normalise(dtype)) is None:
                problems.append(
                    f"column {name!r} has type {dtype}; tre stores flat columns "
                    "(numbers, text, booleans, dates, times) only"
                )
            else:
                types[name] = kept
    if problems:
        raise InputError(
            f"the columns of {path.name} cannot be ingested as they are",
            reasons=problems,
            fix="declare types the source's columns convert to, "
            "or convert the columns before ingest",
        )
    if total == 0:
        raise InputError(
            f"the Parquet file {path.name} has no rows", fix="check the export that made it"
        )
    infos, schema = _columns(names, types, descriptor)

    def stream() -> Iterator[pa.RecordBatch]:
        offset = 0
        try:
            with open_checked(real) as handle, pq.ParquetFile(handle) as parquet:
                for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                    yield _conform(path, batch, schema, descriptor, offset)
                    offset += batch.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise InputError(
                f"the Parquet file {path.name} cannot be read to the end",
                reasons=[f"reading failed after row {offset} ({type(exc).__name__})"],
                fix="export the source again; it may be truncated or damaged",
            ) from exc

    return Source(path, infos, schema, total, stream)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    try:
        pc.cast(pa.array([], type=source), target)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def _conform(
    path: Path,
    batch: pa.RecordBatch,
    schema: pa.Schema,
    descriptor: DatasetDescriptor | None,
    offset: int,
) -> pa.RecordBatch:
    """`batch` in `schema`'s column order and types; InputError naming the column and
    row (from 1, `offset` rows before this batch) of a value that will not convert."""
    arrays = []
    for field in schema:
        column = batch.column(field.name)
        if column.type != field.type:
            try:
                column = pc.cast(column, field.type)  # safe: overflow and truncation fail
            except pa.ArrowException as exc:
                said = "declared" if descriptor is not None else "stored as"
                bad = first_bad(column, field.type)
                at = f", first at data row {offset + bad + 1}" if bad is not None else ""
                raise InputError(
                    f"a value in the source {path.name} does not fit its column",
                    reasons=[
                        f"column {field.name!r} is {said} {field.type} but the source "
                        f"has {column.type} values that do not convert to it{at}"
                    ],
                    fix="correct the value in the source, or declare a type that holds it",
                ) from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
