"""Where a source's bad value or line is, without ever saying what it is.

pyarrow's CSV and cast errors quote the offending value or the whole line, and a source
may hold anything (a link to the wrong file, a column of secrets), so those messages
are never passed on. These helpers name the column and the row or line instead, found
by reading the file again on the error path only (so a good ingest pays nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from tre.errors import InputError
from tre.secured.arrow_types import parse_type
from tre.secured.source_paths import open_checked

__all__ = ["csv_errors", "first_bad"]

_CSV_COLUMN = re.compile(r"In CSV column #(\d+): (.*)", re.DOTALL)
#: pyarrow puts the row first when it reads on one thread ("Row #3: CSV conversion ...").
_CSV_CONVERSION = re.compile(r"(?:Row #\d+: )?CSV conversion error to (\S+): (.*)", re.DOTALL)


@contextmanager
def csv_errors(path: Path, real: Path, names: list[str], declared: bool) -> Iterator[None]:
    """Turn pyarrow's CSV errors into an InputError a person can act on. pyarrow's
    messages quote the offending value or line, so they are never passed on: the
    column and the row (found by reading again, carefully) are named instead."""
    try:
        yield
    except pa.ArrowException as exc:
        text = str(exc).strip()
        where = _CSV_COLUMN.match(text)
        if where and (conversion := _CSV_CONVERSION.match(where[2])):
            index = int(where[1])
            name = names[index] if index < len(names) else f"#{index + 1}"
            row = _csv_bad_row(real, name, conversion[1]) if index < len(names) else None
            what = f"its value in data row {row}" if row is not None else "one of its values"
            if declared:
                reason = f"column {name!r} is declared {conversion[1]}, but {what} is not one"
                fix = "correct the value in the source, or declare the column's type as string"
            else:
                reason = (
                    f"column {name!r} looked like {conversion[1]} in the first rows, "
                    f"but {what} is not one"
                )
                fix = "declare the column's type in a descriptor (e.g. string) and ingest again"
            raise InputError(
                f"the CSV file {path.name} has a value that does not fit its column",
                reasons=[reason],
                fix=fix,
            ) from exc
        raise InputError(
            f"the CSV file {path.name} cannot be read",
            reasons=[_csv_bad_line(real) or "pyarrow could not parse it as CSV"],
            fix="check every row has as many fields as the header, and that fields "
            "containing commas or line breaks are quoted",
        ) from exc


def _csv_bad_line(real: Path) -> str | None:
    """Which line of the CSV has the wrong number of fields (the threaded reader cannot
    tell, so the file is read again on one thread), without its text."""
    rows: list[pcsv.InvalidRow] = []

    def seen(row: pcsv.InvalidRow) -> str:
        rows.append(row)
        return "error"

    try:
        with open_checked(real) as handle:
            options = pcsv.ReadOptions(use_threads=False)
            for _ in pcsv.open_csv(
                handle,
                read_options=options,
                parse_options=pcsv.ParseOptions(invalid_row_handler=seen),
            ):
                pass
    except (pa.ArrowException, InputError, OSError):
        pass
    if not rows:
        return None
    row = rows[0]
    line = f"line {row.number}" if row.number is not None else "a line"
    return f"{line} has {row.actual_columns} field(s) where the header has {row.expected_columns}"


def _csv_bad_row(real: Path, name: str, type_text: str) -> int | None:
    """The data row (from 1) of the first value in column `name` that does not convert
    to `type_text`, found by reading the column again as text; None if it cannot tell."""
    try:
        target = parse_type(type_text)
    except ValueError:
        return None
    convert = pcsv.ConvertOptions(
        include_columns=[name], column_types={name: pa.string()}, strings_can_be_null=True
    )
    offset = 0
    try:
        with open_checked(real) as handle:
            for batch in pcsv.open_csv(handle, convert_options=convert):
                if (index := first_bad(batch.column(0), target)) is not None:
                    return offset + index + 1
                offset += batch.num_rows
    except (pa.ArrowException, InputError, OSError):
        return None
    return None


def first_bad(column: pa.Array, target: pa.DataType) -> int | None:
    """The index of the first value of `column` that does not cast to `target`."""
    if _casts(column, target):
        return None
    low, high = 0, len(column)  # the first bad value is in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _casts(column.slice(low, middle - low), target):
            low = middle
        else:
            high = middle
    return low


def _casts(column: pa.Array, target: pa.DataType) -> bool:
    try:
        pc.cast(column, target)
    except pa.ArrowException:
        return False
    return True
