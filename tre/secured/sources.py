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
raises `InputError` for those, naming the column, the declared type and the value.

Without a descriptor, types are inferred (a CSV from its first block, Parquet from
its schema) and every column is given the `attribute` sensitivity.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from tre.errors import InputError
from tre.models import ColumnInfo, DatasetDescriptor, Sensitivity
from tre.names import check_name
from tre.secured.arrow_types import normalise, parse_type, type_name

__all__ = ["SUFFIXES", "Source", "infer_descriptor", "open_source", "source_files"]

SUFFIXES = (".csv", ".parquet")
#: CSV types are inferred from the first block, so a big block infers from more rows.
CSV_BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 256 * 1024

_CSV_COLUMN = re.compile(r"In CSV column #(\d+): (.*)", re.DOTALL)
_CSV_CONVERSION = re.compile(r"CSV conversion error to (\S+): (.*)", re.DOTALL)


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
    if path.is_dir():
        return _open_folder(path, descriptor)
    _check_file(path)
    if path.suffix.lower() == ".csv":
        return _open_csv(path, descriptor)
    return _open_parquet(path, descriptor)


def infer_descriptor(path: Path) -> DatasetDescriptor:
    """What tre would ingest `path` as without a descriptor: inferred types, and every
    column an attribute. Nothing is written."""
    return DatasetDescriptor(columns=open_source(Path(path), None).columns)


def source_files(folder: Path) -> list[Path]:
    """The files a folder source is made of, in name order; InputError if there are
    none, or if there are files tre cannot ingest (rather than silently skip them)."""
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    wanted = [p for p in found if p.suffix.lower() in SUFFIXES]
    others = [str(p.relative_to(folder)) for p in found if p.suffix.lower() not in SUFFIXES]
    if others:
        raise InputError(
            f"the folder {folder} holds files that are not .csv or .parquet",
            reasons=[f"{name}" for name in others[:20]]
            + ([f"... and {len(others) - 20} more"] if len(others) > 20 else []),
            fix="move them out of the folder (or ingest the data files one by one)",
        )
    if not wanted:
        raise InputError(
            f"the folder {folder} holds no .csv or .parquet files", fix="check the path"
        )
    return wanted


def _open_folder(folder: Path, descriptor: DatasetDescriptor | None) -> Source:
    files = source_files(folder)
    first = open_source(files[0], descriptor)
    # Later files are held to the first file's types (declared, or inferred from it).
    declared = descriptor or DatasetDescriptor(columns=first.columns)
    opened = [first] + [open_source(f, declared) for f in files[1:]]
    totals = [o.total_rows for o in opened]

    def stream() -> Iterator[pa.RecordBatch]:
        for each in opened:
            yield from each.batches()

    total = None if any(t is None for t in totals) else sum(t or 0 for t in totals)
    return Source(folder, first.columns, first.schema, total, stream)


def _check_file(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(
            f"cannot ingest {path.name}: only .csv and .parquet files can be ingested",
            fix="export the data as CSV (with a header row) or Parquet",
        )
    if not path.exists():
        raise InputError(f"the source file {path} does not exist", fix="check the path")
    if not path.is_file():
        raise InputError(f"the source {path} is not a file", fix="give the path of a file")
    if path.stat().st_size == 0:
        raise InputError(
            f"the source file {path} is empty",
            fix="check the export that made it finished; a CSV needs a header row and data",
        )


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


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"the CSV file {path.name} cannot be read: its header is not UTF-8 CSV text",
            reasons=[str(exc)],
            fix="export the file as UTF-8 CSV with a header row of column names",
        ) from exc


def _open_csv(path: Path, descriptor: DatasetDescriptor | None) -> Source:
    names = _csv_header(path)
    if not any(names):
        raise InputError(
            f"the CSV file {path.name} has no header row",
            fix="put the column names on the first line",
        )
    _check_names(path, names, descriptor)
    declared = _declared(descriptor) if descriptor is not None else None

    def reader(column_types: dict[str, pa.DataType]) -> pcsv.CSVStreamingReader:
        with _csv_errors(path, names, declared):
            return pcsv.open_csv(
                path,
                read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                convert_options=pcsv.ConvertOptions(column_types=column_types),
            )

    first = reader(declared or {})
    if declared is not None:
        types = declared
    else:
        types, problems = {}, []
        for field in first.schema:
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
        if types != {f.name: f.type for f in first.schema}:
            first = reader(types)  # re-open so all-empty columns are read as text
    infos, schema = _columns(names, types, descriptor)

    def stream() -> Iterator[pa.RecordBatch]:
        with _csv_errors(path, names, declared):
            for batch in first:
                yield _conform(batch, schema, descriptor)

    return Source(path, infos, schema, None, stream)


@contextmanager
def _csv_errors(
    path: Path, names: list[str], declared: dict[str, pa.DataType] | None
) -> Iterator[None]:
    """Turn pyarrow's CSV errors into an InputError a person can act on."""
    try:
        yield
    except pa.ArrowException as exc:
        text = str(exc).strip()
        where = _CSV_COLUMN.match(text)
        if where and (conversion := _CSV_CONVERSION.match(where[2])):
            index = int(where[1])
            name = names[index] if index < len(names) else f"#{index + 1}"
            if declared is not None:
                reason = (
                    f"column {name!r} is declared {conversion[1]} but the file has {conversion[2]}"
                )
                fix = "correct the value in the source, or declare the column's type as string"
            else:
                reason = (
                    f"column {name!r} looked like {conversion[1]} in the first rows but "
                    f"later has {conversion[2]}"
                )
                fix = "declare the column's type in a descriptor (e.g. string) and ingest again"
            raise InputError(
                f"the CSV file {path.name} has a value that does not fit its column",
                reasons=[reason],
                fix=fix,
            ) from exc
        raise InputError(
            f"the CSV file {path.name} cannot be read",
            reasons=[text.splitlines()[0]],
            fix="check every row has as many fields as the header, and that fields "
            "containing commas or line breaks are quoted",
        ) from exc


# --- Parquet -----------------------------------------------------------------------


def _open_parquet(path: Path, descriptor: DatasetDescriptor | None) -> Source:
    try:
        with pq.ParquetFile(path) as parquet:
            source_schema = parquet.schema_arrow
            total = parquet.metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"{path.name} is not a readable Parquet file",
            reasons=[str(exc).splitlines()[0]],
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
        try:
            with pq.ParquetFile(path) as parquet:
                for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                    yield _conform(batch, schema, descriptor)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(
                f"the Parquet file {path.name} cannot be read to the end",
                reasons=[str(exc).splitlines()[0]],
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
    batch: pa.RecordBatch, schema: pa.Schema, descriptor: DatasetDescriptor | None
) -> pa.RecordBatch:
    """`batch` in `schema`'s column order and types; InputError naming a bad value."""
    arrays = []
    for field in schema:
        column = batch.column(field.name)
        if column.type != field.type:
            try:
                column = pc.cast(column, field.type)  # safe: overflow and truncation fail
            except pa.ArrowException as exc:
                said = "declared" if descriptor is not None else "stored as"
                raise InputError(
                    "a value in the source does not fit its column",
                    reasons=[
                        f"column {field.name!r} is {said} {field.type} but the source "
                        f"has {column.type} values that do not convert: "
                        f"{str(exc).splitlines()[0]}"
                    ],
                    fix="correct the value in the source, or declare a type that holds it",
                ) from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
