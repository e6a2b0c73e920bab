"""The range of values each column of a dataset holds, noted at ingest for the
disclosure check, never for anyone to read.

Differencing (`disclosure.populations`) compares the filters of two tables as sets of
values. A filter every value meets ("ltc_count >= 0" where no count is negative) keeps
exactly the rows with a value, and only the data says so: this records, per column, what
the check needs to know it. For a number column its smallest and largest value; for a
text or true/false column its values, up to `MAX_VALUES` (a category list); and whether
any value is missing. Identifier columns get nothing (their values are pseudonyms, and
no filter on them says anything about a range).

The extremes of a number column can be one person's value (the oldest resident), so the
record lives in the state database's `dataset_domains` table, which no command, page or
API shows (`tre.service.populations` reads it inside the disclosure check only).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tre.models import ColumnInfo, Sensitivity

__all__ = ["MAX_VALUES", "ColumnDomains"]

#: The most distinct values noted for a text column; past it, the column's values are
#: not noted at all (a free-text or high-cardinality column says nothing a filter needs).
MAX_VALUES = 64


class ColumnDomains:
    """Told the columns (`start`), fed each batch as it is written (`add`); `record()`
    is what is kept."""

    def __init__(self) -> None:
        self._numbers: dict[str, list[Any]] = {}  # column -> [min, max]
        self._values: dict[str, set[Any] | None] = {}  # None: too many to note
        self._nulls: dict[str, bool] = {}  # the columns noted, and whether any is missing
        self._kinds: dict[str, str] = {}

    def start(self, columns: list[ColumnInfo]) -> None:
        """The dataset's columns, once the source is open (identifiers are not noted)."""
        for column in columns:
            if column.sensitivity != Sensitivity.IDENTIFIER:
                self._nulls[column.name] = False

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        for name in self._nulls:
            if name not in batch.schema.names:
                continue
            array = batch.column(name)
            kind = _kind(array.type)
            self._kinds[name] = kind
            if array.null_count:
                self._nulls[name] = True
            if array.null_count == len(array):
                continue
            if kind == "number":
                found = pc.min_max(array)
                low, high = _number(found["min"].as_py(), -1), _number(found["max"].as_py(), 1)
                seen = self._numbers.get(name)
                self._numbers[name] = (
                    [low, high] if seen is None else [min(seen[0], low), max(seen[1], high)]
                )
            elif kind == "values" and self._values.get(name, set()) is not None:
                held = self._values.setdefault(name, set())
                assert held is not None
                distinct = pc.unique(pc.drop_null(array))
                held.update(v for v in distinct.to_pylist() if v is not None)
                if len(held) > MAX_VALUES:
                    self._values[name] = None

    def record(self) -> dict[str, Any]:
        """JSON: {"format": 1, "columns": {name: {"nulls": bool, and "min"/"max" or
        "values"}}}; a column whose values are not noted has only "nulls"."""
        columns: dict[str, dict[str, Any]] = {}
        for name, nulls in self._nulls.items():
            entry: dict[str, Any] = {"nulls": nulls}
            kind = self._kinds.get(name)
            if kind == "number" and name in self._numbers:
                low, high = self._numbers[name]
                if _finite(low) and _finite(high):
                    entry |= {"min": low, "max": high}
            elif kind == "values" and (held := self._values.get(name)) is not None:
                entry["values"] = sorted(held, key=lambda v: (type(v).__name__, v))
            columns[name] = entry
        return {"format": 1, "columns": columns}


def _kind(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind):
        return "values"
    if pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type):
        return "values"
    return "other"  # dates, times, binary: not noted


def _number(value: Any, side: int) -> int | float:
    """A JSON number no narrower than `value`: a decimal becomes the float just outside it
    (a range a little too wide only makes the check assume less)."""
    if isinstance(value, (int, float)):
        return value
    return math.nextafter(float(value), side * math.inf)


def _finite(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number == number and number not in (float("inf"), float("-inf"))
