"""Reading secured fragments straight into polars, filtering rows while they are read.

The same files, keys and checks as `tre.secured.reader`, read by polars instead of
pyarrow: polars reads Parquet modular encryption given the data keys, and pushes
filters into the read (it decodes the other columns only where rows match), which
pyarrow's reader cannot do for one fragment. The data keys come from each file's key
material through `tre.keys.kms.data_keys`, under the job's grant, for the footer and
the columns read: polars is never given a key it was not granted.

Before polars is called, in plain Python: every column read *or named by the filter*
exists and is granted (`check_columns`), and the grant is signed, current and covers
their keys (`check_grant`), exactly as for pyarrow.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pyarrow as pa

from tre.errors import PlatformError, TreError
from tre.keys.kms import column_key_id, data_keys, footer_key_id
from tre.secured.arrow_types import parse_type
from tre.secured.reader import (
    Fragment,
    SecuredSource,
    _file_path,
    _unique,
    check_columns,
    check_grant,
    fragments,
)

__all__ = ["filter_columns", "read_frame", "read_frames"]


def filter_columns(where: pl.Expr | None) -> list[str]:
    """The columns a filter expression names (each must be granted)."""
    return [] if where is None else list(dict.fromkeys(where.meta.root_names()))


def read_frame(
    source: SecuredSource,
    fragment: Fragment,
    columns: Sequence[str],
    where: pl.Expr | None = None,
) -> pl.DataFrame:
    """Decrypt and read `columns` of one fragment, keeping only rows where `where` holds.

    Keys for the footer and the columns read and filtered on, nothing else.
    """
    wanted = _unique(columns)
    named = list(dict.fromkeys([*wanted, *filter_columns(where)]))
    check_columns(source, named)  # before polars sees anything
    path = _file_path(source, fragment)
    check_grant(source, named)
    footer = footer_key_id(source.dataset)
    by_key = {column_key_id(source.dataset, c): c for c in named}
    keys = data_keys(source.settings, source.token, path, [footer, *by_key])
    decryption = pl.ParquetDecryptionProperties(
        footer_key=keys[footer], column_keys={by_key[k]: keys[k] for k in by_key}
    )
    frame = pl.scan_parquet(path, decryption=decryption)
    groups = source.files[fragment.file][1]
    if list(fragment.row_groups) != list(range(len(groups))):
        # Part of a file: its rows, then the filter (polars reads only those row groups).
        first = fragment.row_groups[0]
        frame = frame.slice(sum(groups[:first]), fragment.rows)
    if where is not None:
        frame = frame.filter(where)
    try:
        table = frame.select(wanted).collect()
    except TreError:
        raise
    except FileNotFoundError as exc:
        raise PlatformError(
            f"a data file of {source.dataset} v{source.version} is missing: {path}",
            fix="restore the data root from backup",
        ) from exc
    except (OSError, pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise PlatformError(
            f"{path} cannot be read",
            reasons=[str(exc).splitlines()[0] if str(exc) else type(exc).__name__],
            fix="check the file against the registry's checksum (tre dataset verify); "
            "restore it from backup if it differs",
        ) from exc
    if where is None and table.height != fragment.rows:
        raise PlatformError(
            f"{path} row groups {list(fragment.row_groups)} hold {table.height} rows; "
            f"the registry says {fragment.rows}",
            fix="check the file against the registry's checksum; restore it from backup",
        )
    return table


def read_frames(
    source: SecuredSource, columns: Sequence[str], where: pl.Expr | None = None
) -> pl.DataFrame:
    """All rows of `columns` (where `where` holds), fragment by fragment, in this process."""
    parts = [read_frame(source, f, columns, where) for f in fragments(source)]
    if parts:
        return pl.concat(parts, how="vertical")
    types = {name: parse_type(dtype) for name, dtype, _ in source.columns}
    empty = pa.schema([pa.field(c, types[c]) for c in _unique(columns)]).empty_table()
    frame = pl.from_arrow(empty)
    assert isinstance(frame, pl.DataFrame)
    return frame
