"""Reading secured datasets, on the Dask workers, with keys for granted columns only.

A job is described to its workers by a `SecuredSource`: plain, picklable data (paths,
the dataset's files and row groups, its columns, the columns the job's project was
granted, where the master keys are, and the job's signed key grant). Crypto objects
never travel: `read_fragment` builds them in the process that reads, through
`tre.keys.kms`.

Before pyarrow is called, in plain Python, every read checks:
1. every column asked for exists and is granted (`check_columns`): pyarrow can abort
   the whole process when a read or metadata call touches a column whose key the
   reader lacks, so an ungranted column must never reach it;
2. the grant (`tre.keys.grants`): signed by tre, not expired, not revoked, and
   covering the master key of every column asked for and the footer key. So a job
   whose project is suspended or expires fails at its next read, with the reason.
The KMS client checks the grant again at every unwrap.

    PermissionDenied
    ├── ColumnNotGranted   a job named a column it may not read, or one that does not exist
    └── GrantError         (tre.keys.grants) the job's grant does not allow the read
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tre.errors import PermissionDenied, PlatformError, TreError
from tre.keys.kms import authorise_grant, column_key_id, decryption_properties, footer_key_id
from tre.keys.masterkeys import KmsSettings
from tre.models import Dataset
from tre.secured.arrow_types import parse_type

__all__ = [
    "ColumnNotGranted",
    "Fragment",
    "SecuredSource",
    "check_columns",
    "check_grant",
    "fragments",
    "read_fragment",
    "read_table",
]


@dataclass(frozen=True)
class SecuredSource:
    """What a worker needs to read one dataset version for one job; plain data."""

    data_root: str
    keys_root: str
    dataset: str
    version: int
    files: tuple[tuple[str, tuple[int, ...]], ...]  # (path relative to data_root, rows per group)
    columns: tuple[tuple[str, str, str], ...]  # (name, arrow type, sensitivity)
    granted: tuple[str, ...]
    token: str = field(default="", repr=False)  # the signed key grant: a credential
    kms: tuple[tuple[str, str], ...] = ()  # KmsSettings.pairs(); () is the local store
    unit: str = ""  # the dataset's unit column (Dataset.unit), "" if it declares none

    @classmethod
    def from_dataset(
        cls,
        *,
        data_root: Path,
        keys_root: Path,
        dataset: Dataset,
        granted: Sequence[str],
        token: str = "",
        kms: KmsSettings | None = None,
    ) -> SecuredSource:
        """The source for `dataset` as a job granted `granted` columns (and holding the
        grant `token`) reads it."""
        return cls(
            data_root=str(Path(data_root).absolute()),
            keys_root=str(Path(keys_root).absolute()),
            dataset=dataset.name,
            version=dataset.version,
            files=tuple((f.path, tuple(f.row_groups)) for f in dataset.files),
            columns=tuple((c.name, c.type, c.sensitivity.value) for c in dataset.columns),
            granted=tuple(granted),
            token=token,
            kms=kms.pairs() if kms is not None else (),
            unit=dataset.unit or "",
        )

    @property
    def settings(self) -> KmsSettings:
        """Where this source's master keys are."""
        if self.kms:
            return KmsSettings(**dict(self.kms))
        return KmsSettings.local(Path(self.keys_root))

    @property
    def column_names(self) -> tuple[str, ...]:
        """The dataset's columns, in order."""
        return tuple(name for name, _, _ in self.columns)


@dataclass(frozen=True)
class Fragment:
    """Consecutive row groups of one file: the unit of work one task reads."""

    file: int  # index into SecuredSource.files
    row_groups: tuple[int, ...]
    rows: int


class ColumnNotGranted(PermissionDenied):
    """A job asked for columns it may not read; lists every one of them."""

    def __init__(
        self,
        *,
        dataset: str,
        version: int,
        unknown: Sequence[str],
        not_granted: Sequence[str],
        columns: Sequence[str],
        granted: Sequence[str],
    ) -> None:
        self.dataset, self.version = dataset, version
        self.unknown, self.not_granted = list(unknown), list(not_granted)
        self.columns, self.granted = list(columns), list(granted)
        reasons = [
            f"column {name!r} is not approved for this project "
            f"(approved: {', '.join(granted) or 'none'})"
            for name in not_granted
        ] + [
            f"column {name!r} is not a column of {dataset} v{version} "
            f"(its columns: {', '.join(columns)})"
            for name in unknown
        ]
        fixes = []
        if not_granted:
            fixes.append(
                "ask the project's admin to add the column to the project's "
                "approval, or remove it from the job"
            )
        if unknown:
            fixes.append("check the spelling of the column names")
        count = len(unknown) + len(not_granted)
        super().__init__(
            f"this job may not read {count} column(s) of dataset {dataset!r} v{version}",
            reasons=reasons,
            fix="; ".join(fixes),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised on Dask workers and pickled back to the client: rebuild from fields,
        # not from the rendered message (Exception's default would lose them).
        rebuild = functools.partial(
            ColumnNotGranted,
            dataset=self.dataset,
            version=self.version,
            unknown=self.unknown,
            not_granted=self.not_granted,
            columns=self.columns,
            granted=self.granted,
        )
        return (rebuild, ())


def _unique(columns: Sequence[str]) -> list[str]:
    if isinstance(columns, str):  # a lone name would otherwise be read letter by letter
        columns = [columns]
    return list(dict.fromkeys(columns))


def check_columns(source: SecuredSource, columns: Sequence[str]) -> None:
    """Raise ColumnNotGranted unless every one of `columns` exists and is granted."""
    names = source.column_names
    wanted = _unique(columns)
    unknown = [c for c in wanted if c not in names]
    not_granted = [c for c in wanted if c in names and c not in source.granted]
    if unknown or not_granted:
        raise ColumnNotGranted(
            dataset=source.dataset,
            version=source.version,
            unknown=unknown,
            not_granted=not_granted,
            columns=names,
            granted=[c for c in names if c in source.granted],
        )


def fragments(source: SecuredSource, target_rows: int = 1_000_000) -> list[Fragment]:
    """Split the dataset into fragments of consecutive row groups of ~`target_rows`.

    A fragment never spans files and never exceeds `target_rows` unless one row group
    alone does. Uses only the registry's row-group sizes: no file is opened.
    """
    if target_rows < 1:
        raise ValueError(f"target_rows must be 1 or more, not {target_rows}")
    out: list[Fragment] = []
    for index, (_, groups) in enumerate(source.files):
        current: list[int] = []
        rows = 0
        for group, size in enumerate(groups):
            if current and rows + size > target_rows:
                out.append(Fragment(index, tuple(current), rows))
                current, rows = [], 0
            current.append(group)
            rows += size
        if current:
            out.append(Fragment(index, tuple(current), rows))
    return out


def _file_path(source: SecuredSource, fragment: Fragment) -> Path:
    if not 0 <= fragment.file < len(source.files):
        raise PlatformError(
            f"fragment {fragment} is not part of {source.dataset} v{source.version}",
            fix="report this as a bug in tre",
        )
    relative, groups = source.files[fragment.file]
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise PlatformError(
            f"the registry gives {relative!r} as a data file path",
            fix="restore the state database from backup",
        )
    if not all(0 <= g < len(groups) for g in fragment.row_groups):
        raise PlatformError(
            f"fragment {fragment} names row groups {relative} does not have",
            fix="report this as a bug in tre",
        )
    return Path(source.data_root) / rel


def read_fragment(
    source: SecuredSource,
    fragment: Fragment,
    columns: Sequence[str],
    dictionary: Sequence[str] = (),
) -> pa.Table:
    """Decrypt and read `columns` of one fragment, with keys for those columns only.

    Columns in `dictionary` (low-cardinality text, such as grouping keys) are read
    dictionary-encoded, which skips decoding every string: several times faster.
    """
    wanted = _unique(columns)
    check_columns(source, wanted)  # before pyarrow sees anything
    as_dictionary = [c for c in _unique(dictionary) if c in wanted]
    path = _file_path(source, fragment)
    check_grant(source, wanted)  # also before pyarrow: signed, current, covers the keys
    props = decryption_properties(source.settings, source.token, path)
    try:
        with pq.ParquetFile(
            path, decryption_properties=props, read_dictionary=as_dictionary or None
        ) as parquet:
            table = parquet.read_row_groups(list(fragment.row_groups), columns=wanted)
    except TreError:
        raise  # from the KMS client or key store: already says what to do
    except FileNotFoundError as exc:
        raise PlatformError(
            f"a data file of {source.dataset} v{source.version} is missing: {path}",
            fix="restore the data root from backup",
        ) from exc
    except (OSError, pa.ArrowException) as exc:
        raise PlatformError(
            f"{path} cannot be read",
            reasons=[str(exc).splitlines()[0]],
            fix="check the file against the registry's checksum; restore it "
            "from backup if it differs",
        ) from exc
    if table.num_rows != fragment.rows:
        raise PlatformError(
            f"{path} row groups {list(fragment.row_groups)} hold {table.num_rows} rows; "
            f"the registry says {fragment.rows}",
            fix="check the file against the registry's checksum; restore it from backup",
        )
    return table


def check_grant(source: SecuredSource, columns: Sequence[str]) -> None:
    """Raise a GrantError unless the source's grant lets it read `columns` now."""
    labels = {footer_key_id(source.dataset): f"the footers of dataset {source.dataset!r}"}
    for column in _unique(columns):
        labels[column_key_id(source.dataset, column)] = (
            f"column {column!r} of dataset {source.dataset!r}"
        )
    authorise_grant(source.settings, source.token, list(labels), labels)


def read_table(source: SecuredSource, columns: Sequence[str]) -> pa.Table:
    """All rows of `columns`, read fragment by fragment in this process."""
    wanted = _unique(columns)
    check_columns(source, wanted)
    tables = [read_fragment(source, f, wanted) for f in fragments(source)]
    if tables:
        return pa.concat_tables(tables)
    types = {name: dtype for name, dtype, _ in source.columns}
    return pa.schema([pa.field(c, parse_type(types[c])) for c in wanted]).empty_table()
