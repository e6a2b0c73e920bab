"""Ingest: turn CSV or Parquet sources into a secured (encrypted) dataset version.

    data_root/<name>/v<version>/part-00000.parquet        (+ _KEY_MATERIAL_FOR_<part>.json)
    data_root/<name>/v<version>/<column>=<value>/part-00000.parquet   (partitioned)

The source is one file or a folder of them (`tre.secured.sources`). Each part holds at
most `rows_per_file` rows in row groups of `rows_per_group` rows (fragments of whole
row groups are what jobs read in parallel; see `tre.secured.parts`). Every column is
encrypted with its own master key and the footer with the dataset's footer key (see
`tre.keys.kms`), so nothing - values, statistics or schema - is readable without
keys. Key material is kept beside each part, so keys can be rotated without rewriting
data.

The source is streamed, so it need not fit in memory. Parts are written into a
private temporary folder that is renamed into place only when all of them are
complete; any failure removes it, so a half-written version is never seen, and the
caller registers the returned `Dataset` only after `ingest` returns. Folders are
0700 and files 0600.

Without a descriptor every column is given the `attribute` sensitivity (the least
protected class): the CLI shows the inferred schema and asks before going on, and an
admin should declare identifiers and quasi-identifiers in a descriptor instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from tre import yamlfile
from tre.errors import InputError, PlatformError
from tre.keys.keysystems import open_master_keys
from tre.keys.kms import encryption_properties
from tre.keys.masterkeys import KmsSettings
from tre.models import DataFile, Dataset, DatasetDescriptor
from tre.names import check_name
from tre.secured.arrow_types import parse_type
from tre.secured.domains import ColumnDomains
from tre.secured.parts import (
    MAX_PARTITIONS,
    PartWriter,
    partition_folder,
    partition_problems,
    split_partitions,
    statistics_columns,
)
from tre.secured.sources import Source, open_source

__all__ = ["Layout", "Progress", "ingest", "read_descriptor"]

#: Called with (rows done, total rows or None when the source cannot tell).
Progress = Callable[[int, int | None], None]


def read_descriptor(path: Path) -> DatasetDescriptor:
    """Read a dataset descriptor (YAML); InputError listing every problem in it."""
    path = Path(path)
    try:
        raw = yamlfile.load(path.read_bytes(), f"the descriptor {path}")
    except yamlfile.YamlError as exc:
        raise InputError(str(exc), fix="correct the descriptor at the place shown") from None
    except FileNotFoundError as exc:
        raise InputError(f"the descriptor {path} does not exist", fix="check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"the descriptor {path} cannot be read: {exc}", fix="give a readable UTF-8 YAML file"
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(
            f"the descriptor {path} is not valid YAML",
            reasons=[_yaml_problem(exc)],
            fix="correct the YAML at the place shown",
        ) from exc
    if not isinstance(raw, dict):
        raise InputError(
            f"the descriptor {path} must be a mapping with 'columns' (and optionally "
            "'name' and 'description')",
            fix="see the dataset descriptor reference for an example",
        )
    problems = _type_problems(raw)
    try:
        descriptor = DatasetDescriptor.model_validate(raw)
    except ValidationError as exc:
        problems = [_render_error(raw, error) for error in exc.errors()] + problems
    if problems:
        raise InputError(
            f"the descriptor {path} has {len(problems)} problem(s)",
            reasons=problems,
            fix="correct the descriptor and try again",
        )
    return descriptor


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong with the YAML and where, without quoting it: PyYAML's own message
    shows the line, and a descriptor path that is a link to the wrong file would show
    that file's content."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "it cannot be parsed"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def _type_problems(raw: dict[str, Any]) -> list[str]:
    columns = raw.get("columns")
    problems = []
    for index, column in enumerate(columns if isinstance(columns, list) else []):
        if isinstance(column, dict) and isinstance(column.get("type"), str):
            try:
                parse_type(column["type"])
            except ValueError as exc:
                problems.append(f"{_where(raw, ('columns', index, 'type'))}: {exc}")
    return problems


def _where(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a person reads it: columns[2] ('age').type."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        if loc[:1] == ("columns",) and isinstance(part, int):
            columns = raw.get("columns")
            entry = columns[part] if isinstance(columns, list) and part < len(columns) else None
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                text += f" ({entry['name']!r})"
    return text or "the descriptor"


def _render_error(raw: dict[str, Any], error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{_where(raw, tuple(error['loc']))}: {message}"


@dataclass(frozen=True)
class Layout:
    """How a version is laid out: row group and file sizes, partition columns."""

    rows_per_group: int = 1_000_000
    rows_per_file: int = 4_000_000
    partition_by: tuple[str, ...] = ()


def ingest(
    *,
    keys_root: Path,
    data_root: Path,
    name: str,
    version: int,
    source: Path,
    descriptor: DatasetDescriptor | None,
    ingested_by: str,
    rows_per_group: int = 1_000_000,
    rows_per_file: int = 4_000_000,
    partition_by: Sequence[str] = (),
    progress: Progress | None = None,
    kms: KmsSettings | None = None,
    domains: ColumnDomains | None = None,
) -> Dataset:
    """Encrypt `source` (a CSV or Parquet file, or a folder of them) into
    `data_root/<name>/v<version>/` and describe the result.

    Refuses (InputError) a bad name, an existing version, a source that does not
    match the descriptor, a partition column that may not partition; PlatformError for
    a broken key store or data root. A `rows_per_group` larger than `rows_per_file` is
    cut to it. `kms` says where master keys live (default: the local store at
    `keys_root`). `domains`, if given, is fed every batch written (`tre.secured.domains`).
    """
    _check_arguments(name, version, rows_per_group, rows_per_file, descriptor)
    kms = kms or KmsSettings.local(Path(keys_root))
    open_master_keys(kms).key_ids()  # a broken key store is reported before any work is done
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise PlatformError(
            f"the data root {data_root} does not exist",
            fix="create the TRE home with 'tre init', or restore it",
        )
    dataset_dir = data_root / name
    final = dataset_dir / f"v{version}"
    if final.exists():
        raise InputError(
            f"dataset {name!r} already has a version {version} at {final}",
            fix=f"ingest as version {version + 1} (versions are never overwritten)",
        )
    opened = open_source(Path(source), descriptor)
    if domains is not None:
        domains.start(opened.columns)
    problems = partition_problems(opened.columns, list(partition_by))
    if problems:
        raise InputError(
            f"dataset {name!r} cannot be partitioned on {', '.join(partition_by)}",
            reasons=problems,
            fix="partition on attribute columns with a few values, or do not partition",
        )
    layout = Layout(min(rows_per_group, rows_per_file), rows_per_file, tuple(partition_by))
    made_dataset_dir = not dataset_dir.exists()
    dataset_dir.mkdir(mode=0o700, exist_ok=True)
    tmp = dataset_dir / f".v{version}.partial-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    try:
        files = _write_parts(
            opened,
            tmp,
            kms=kms,
            dataset=name,
            rel=f"{name}/v{version}",
            layout=layout,
            progress=progress,
            domains=domains,
        )
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_dataset_dir:
            _remove_if_empty(dataset_dir)
        raise
    return Dataset(
        name=name,
        version=version,
        description=descriptor.description if descriptor else "",
        columns=opened.columns,
        row_count=sum(f.rows for f in files),
        files=files,
        checksum=hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest(),
        ingested_by=ingested_by,
        unit=descriptor.unit if descriptor else None,
    )


def _check_arguments(
    name: str,
    version: int,
    rows_per_group: int,
    rows_per_file: int,
    descriptor: DatasetDescriptor | None,
) -> None:
    problems = []
    try:
        check_name(name, "object", "dataset name")
    except ValueError as exc:
        problems.append(str(exc))
    if not isinstance(version, int) or version < 1:
        problems.append(f"version {version!r} must be a whole number, 1 or more")
    for label, value in (("rows per row group", rows_per_group), ("rows per file", rows_per_file)):
        if not isinstance(value, int) or value < 1:
            problems.append(f"{label} {value!r} must be a whole number, 1 or more")
    if descriptor is not None and descriptor.name is not None and descriptor.name != name:
        problems.append(f"the descriptor is for dataset {descriptor.name!r}, not {name!r}")
    if problems:
        raise InputError("cannot ingest", reasons=problems, fix="correct the arguments")


def _publish(tmp: Path, final: Path) -> None:
    _fsync(tmp)
    if final.exists():  # os.rename would silently replace an empty folder
        raise InputError(
            f"{final} appeared while ingesting (another ingest of this version?)",
            fix="check the dataset's versions and ingest as the next one",
        )
    try:
        os.rename(tmp, final)
    except OSError as exc:
        raise PlatformError(
            f"cannot move the ingested files into place at {final}",
            reasons=[str(exc)],
            fix="check the data root's permissions",
        ) from exc
    _fsync(final.parent)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: something else lives there, leave it
        folder.rmdir()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _counted(
    batches: Iterable[pa.RecordBatch], total: int | None, progress: Progress | None
) -> Iterator[pa.RecordBatch]:
    done = 0
    for batch in batches:
        yield batch
        done += batch.num_rows
        if progress is not None:
            progress(done, total)


def _write_parts(
    source: Source,
    folder: Path,
    *,
    kms: KmsSettings,
    dataset: str,
    rel: str,
    layout: Layout,
    progress: Progress | None,
    domains: ColumnDomains | None = None,
) -> list[DataFile]:
    """Write `source` as encrypted parts in `folder` (one sub-folder per partition)."""
    stats = statistics_columns(source.columns) or False

    def open_part(path: Path) -> pq.ParquetWriter:
        # Create the file 0600 before pyarrow opens it: pyarrow would create it with the
        # umask's mode, and truncating an existing file keeps the mode it has.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return pq.ParquetWriter(
            path,
            source.schema,
            # Fresh data keys per file (the KEKs that wrap them are cached by pyarrow).
            encryption_properties=encryption_properties(kms, dataset, source.columns, path),
            write_statistics=stats,
        )

    writers: dict[tuple[object, ...], PartWriter] = {}
    try:
        for batch in _counted(source.batches(), source.total_rows, progress):
            table = pa.Table.from_batches([batch], schema=source.schema)
            if domains is not None:
                domains.add(table)
            for values, rows in split_partitions(table, layout.partition_by):
                writer = writers.get(values)
                if writer is None:
                    if len(writers) >= MAX_PARTITIONS:
                        raise InputError(
                            f"partitioning on {', '.join(layout.partition_by)} would make "
                            f"more than {MAX_PARTITIONS} partitions",
                            fix="partition on a column with a few distinct values "
                            "(a month, an area), or do not partition",
                        )
                    sub = partition_folder(layout.partition_by, values)
                    writer = PartWriter(
                        folder / sub if sub else folder,
                        f"{rel}/{sub}" if sub else rel,
                        source.schema,
                        open_part,
                        layout.rows_per_group,
                        layout.rows_per_file,
                    )
                    writers[values] = writer
                writer.add(rows)
        files = [f for key in sorted(writers, key=_sort_key) for f in writers[key].finish()]
    except (OSError, pa.ArrowException) as exc:  # disk full, data root gone, ...
        # An OSError says which file and why; pyarrow's messages may quote data.
        said = str(exc).splitlines()[0] if isinstance(exc, OSError) else type(exc).__name__
        raise PlatformError(
            "writing the secured files failed",
            reasons=[said],
            fix="check the data root has space and is writable",
        ) from exc
    finally:
        for writer in writers.values():
            writer.abort()
    if not files:
        raise InputError(
            f"the source {source.path.name} has a header but no rows",
            fix="check the export that made it",
        )
    return files


def _sort_key(values: tuple[object, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, str(v)) for v in values)
