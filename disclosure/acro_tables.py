"""A checked table (`TableResult`) laid out as ACRO shows it: a pandas DataFrame with
the row keys as index and the column keys as columns, "All" totals when asked, and the
`sdc` and `outcome` entries of ACRO's results.json, positions counted in that layout.

pandas is imported by the caller (`disclosure.acro`) and passed in, so that importing
`disclosure` never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from disclosure.acro_results import SDC_RULES, empty_sdc
from disclosure.check import TableResult
from disclosure.validate import MARGIN

__all__ = ["AcroTable", "acro_layout", "combine"]

#: ACRO's (and pandas') label of a total row and column.
ALL = "All"


@dataclass
class AcroTable:
    """What an ACRO user gets back and what results.json records for one table."""

    frame: Any  # pandas.DataFrame
    sdc: dict[str, Any]
    outcome: dict[str, dict[str, str]]
    failing: dict[str, int]  # cells flagged by each ACRO rule


def acro_layout(
    pd: Any, result: TableResult, *, suppress: bool, margins: bool, label: str = ""
) -> AcroTable:
    """Lay out `result` as pandas' crosstab does; with `suppress`, cells the engine
    withholds (failing cells and those that would give them away) are NaN. A table
    without column keys (a pivot_table by index alone) has one column, `label`."""
    by_column = bool(result.columns)
    cells = result.cells if margins else result.inner_cells
    if not by_column:
        # Its only total is the grand total, which pandas shows as the "All" row.
        cells = cells.filter(pl.col(MARGIN).is_in(["", "total"]))
    row_labels = _labels(result.inner_cells, result.rows)
    column_labels = _labels(result.inner_cells, result.columns) if by_column else [label]
    if margins:
        row_labels.append(_all_label(len(result.rows)))
        if by_column:
            column_labels.append(_all_label(len(result.columns)))
    row_at = {label: i for i, label in enumerate(row_labels)}
    column_at = {label: i for i, label in enumerate(column_labels)}

    shape = (len(row_labels), len(column_labels))
    values = np.full(shape, np.nan)
    flags = {rule: np.zeros(shape, dtype=bool) for rule in SDC_RULES}
    # Said per cell in `outcome` but not ACRO rules, so not in `sdc`: tre's statistic
    # rule (min/max, sides of a median, a std's degrees of freedom), and cells
    # suppressed only so that a failing one cannot be worked out from the totals.
    notes = {name: np.zeros(shape, dtype=bool) for name in ("statistic", "secondary")}
    shown = "published" if suppress else "value"
    for cell in cells.iter_rows(named=True):
        margin = cell[MARGIN]
        row = _all_label(len(result.rows)) if margin in ("column", "total") else None
        column = _all_label(len(result.columns)) if margin in ("row", "total") else None
        if not by_column:
            column = label
        r = row_at[row if row is not None else _key(cell, result.rows)]
        c = column_at[column if column is not None else _key(cell, result.columns)]
        if cell[shown] is not None:
            values[r, c] = cell[shown]
        for rule, flag in SDC_RULES.items():
            flags[rule][r, c] = bool(flag and cell[flag])
        notes["statistic"][r, c] = bool(cell["fails_statistic"])
        notes["secondary"][r, c] = suppress and cell["suppressed"] == "secondary"

    frame = pd.DataFrame(
        _whole_counts(values, result.statistic),
        index=_index(pd, row_labels, result.rows),
        columns=_index(pd, column_labels, result.columns) if by_column else [label],
    )
    sdc = empty_sdc(suppress)
    for rule, mask in flags.items():
        sdc["summary"][rule] = int(mask.sum())
        sdc["cells"][rule] = [[int(r), int(c)] for r, c in np.argwhere(mask)]
    return AcroTable(
        frame=frame,
        sdc=sdc,
        outcome=_outcome({**flags, **notes}, row_labels, column_labels),
        failing={rule: int(mask.sum()) for rule, mask in flags.items()},
    )


def _labels(inner: pl.DataFrame, keys: Sequence[str]) -> list[Any]:
    # pandas sorts the levels of a crosstab; the engine keeps every combination of the
    # column keys with every row, so the inner cells hold all labels.
    levels = inner.select(keys).unique().sort(keys, nulls_last=True)
    return [_key(row, keys) for row in levels.iter_rows(named=True)]


def _key(cell: dict[str, Any], keys: Sequence[str]) -> Any:
    return cell[keys[0]] if len(keys) == 1 else tuple(cell[key] for key in keys)


def _all_label(depth: int) -> Any:
    # pandas labels a total of several keys ("All", "", ...), of one key "All".
    return ALL if depth == 1 else (ALL, *[""] * (depth - 1))


def _index(pd: Any, labels: list[Any], names: Sequence[str]) -> Any:
    if len(names) == 1:
        return pd.Index(labels, name=names[0])
    return pd.MultiIndex.from_tuples(labels, names=list(names))


def _whole_counts(values: np.ndarray, statistic: str) -> Any:
    # A count table reads as whole numbers, as pandas gives them, unless a cell is NaN.
    if statistic == "count" and not np.isnan(values).any():
        return values.astype(np.int64)
    return values


def _outcome(
    flags: dict[str, np.ndarray], rows: list[Any], columns: list[Any]
) -> dict[str, dict[str, str]]:
    # ACRO's outcome: per column, per row, "ok" or the rules the cell fails ("rule; ").
    outcome: dict[str, dict[str, str]] = {}
    for c, column in enumerate(columns):
        outcome[str(column)] = {
            str(row): "".join(f"{rule}; " for rule, mask in flags.items() if mask[r, c]) or "ok"
            for r, row in enumerate(rows)
        }
    return outcome


def combine(pd: Any, tables: list[AcroTable], functions: list[str]) -> AcroTable:
    """Tables of several aggfuncs side by side, as pandas' pivot_table lays out a list
    of aggfuncs: column blocks keyed by function name, cell positions shifted to match."""
    frame = pd.concat([table.frame for table in tables], axis=1, keys=functions)
    sdc = empty_sdc(bool(tables[0].sdc["summary"]["suppressed"]))
    outcome: dict[str, dict[str, str]] = {}
    offset = 0
    for function, table in zip(functions, tables, strict=True):
        for rule in SDC_RULES:
            sdc["summary"][rule] += table.sdc["summary"][rule]
            sdc["cells"][rule] += [[r, c + offset] for r, c in table.sdc["cells"][rule]]
        for column, cells in table.outcome.items():
            outcome[str((function, column))] = cells
        offset += table.frame.shape[1]
    return AcroTable(
        frame=frame,
        sdc=sdc,
        outcome=outcome,
        failing={rule: sdc["summary"][rule] for rule in SDC_RULES},
    )
