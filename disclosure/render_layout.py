"""How a checked table is drawn, for both renderers: a cross-tab with its totals (one
row key and one column key) or a list of cells, each cell an `Entry` with its mark, and
a `Note` under the table for each cell that fails, needs review or is suppressed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from disclosure.render import (
    NO_VALUE,
    TOTAL_LABEL,
    format_share,
    format_value,
    items_of,
    level_label,
    mapping_of,
    status_label,
    strings_of,
    text_of,
)

__all__ = ["LIST_LIMIT", "Entry", "Layout", "Note", "could_be", "layout"]

#: A list longer than this shows only the cells that fail, need review or are
#: protected: thousands of passing rows hide the few a checker must see.
LIST_LIMIT = 2_000


@dataclass
class Note:
    """A cell that fails, needs review or is suppressed, listed under its table."""

    number: int
    label: str  # e.g. "ward A, sex M"
    status: str
    reason: str


@dataclass
class Entry:
    """One drawn cell: its text, its status (for the mark and colour), its note number,
    and what protection did to it ("", "primary", "secondary" or "rounded")."""

    text: str
    status: str = ""
    note: int | None = None
    protection: str = ""
    could_be: str = ""  # a suppressed cell's range given the release: "could be 0–13"


@dataclass
class Layout:
    """A table ready to draw: a header row, then rows of entries."""

    header: list[str]
    rows: list[list[Entry]]
    notes: list[Note]
    row_header: bool  # the first column names the row (a cross-tab)
    total_row: bool = False  # the last row is the column totals (a cross-tab)
    omitted: int = 0  # passing cells left out of a long list (all are in report.json)


def could_be(cell: Mapping[str, object], statistic: str) -> str:
    """The range the published table leaves a suppressed cell's count (the interval
    audit), e.g. "could be 0–13"; "" when the report has none."""
    interval = cell.get("interval")
    if not isinstance(interval, list) or len(interval) != 2:
        return ""
    low, high = interval
    what = "could be" if statistic == "count" else "contributors could be"
    if high is None:  # nothing bounds it: "0 or more" would say nothing
        return f"{what} {format_value(low, 'count')} or more" if low else ""
    return f"{what} {format_value(low, 'count')}–{format_value(high, 'count')}"


def _protection_of(cell: Mapping[str, object], statistic: str) -> tuple[str, str]:
    """What protection did to a cell, and the released value's text."""
    suppressed = text_of(cell, "suppressed")
    if suppressed in ("primary", "secondary"):
        return suppressed, "suppressed"
    count_key = "published" if statistic == "count" else "published_n"
    computed = cell.get("value" if statistic == "count" else "n")
    released = cell.get(count_key)
    if (
        isinstance(released, int | float)
        and isinstance(computed, int | float)
        and (float(released) != float(computed))
    ):
        return "rounded", format_value(released, "count")
    return "", format_value(cell.get("published"), statistic)


def _cell_label(cell: Mapping[str, object], rows: list[str], columns: list[str]) -> str:
    keys = mapping_of(cell, "keys")
    margin = text_of(cell, "margin")
    if margin == "total":
        return "grand total"
    shown = {"row": rows, "column": columns}.get(margin, [*rows, *columns])
    text = ", ".join(f"{k} {level_label(keys.get(k))}" for k in shown)
    return f"total of {text}" if margin in ("row", "column") else text


def layout(output: Mapping[str, object], dominance_n: object = 2) -> Layout:
    """The table of one output, as a cross-tab (one row key, one column key) or a list."""
    rows, columns = strings_of(output, "rows"), strings_of(output, "columns")
    statistic = text_of(output, "statistic")
    cells = items_of(output, "cells")
    notes: list[Note] = []

    def entry(cell: Mapping[str, object]) -> Entry:
        status = text_of(cell, "status")
        protection, released = _protection_of(cell, statistic)
        number = None
        if status != "pass" or protection == "secondary":
            reason = text_of(cell, "reason")
            if protection == "secondary":
                reason = "suppressed so that other suppressed cells cannot be worked out"
            notes.append(Note(len(notes) + 1, _cell_label(cell, rows, columns), status, reason))
            number = len(notes)
        text = format_value(cell.get("value"), statistic)
        if protection == "rounded":
            text += f" → {released}"
        return Entry(text, status, number, protection, could_be(cell, statistic))

    if len(rows) == 1 and len(columns) == 1:
        table = _crosstab(cells, rows[0], columns[0], entry)
        table.notes = notes
        return table
    return _listed(cells, rows, columns, statistic, dominance_n)


def _listed(
    cells: list[Mapping[str, object]],
    rows: list[str],
    columns: list[str],
    statistic: str,
    dominance_n: object,
) -> Layout:
    """A table as a list of cells, one row each, with its status and reason in columns.
    A long table lists only the cells a checker must look at (see `LIST_LIMIT`)."""
    keys_order = [*rows, *columns]
    header = [*keys_order, "value", "contributors", f"share of the largest {dominance_n}"]
    header += ["status", "released", "reason"]
    shown = cells
    if len(cells) > LIST_LIMIT:
        shown = [
            c for c in cells if text_of(c, "status") != "pass" or _protection_of(c, statistic)[0]
        ]
    listed = []
    for cell in shown:
        keys = mapping_of(cell, "keys")
        summed = {"row": columns, "column": rows, "total": keys_order}.get(
            text_of(cell, "margin"), []
        )
        status = text_of(cell, "status")
        protection, released = _protection_of(cell, statistic)
        reason = text_of(cell, "reason")
        if protection == "secondary":
            reason = "suppressed so that other suppressed cells cannot be worked out"
        value = format_value(cell.get("value"), statistic)
        if could_be(cell, statistic):
            released += f"; {could_be(cell, statistic)}"
        listed.append(
            [
                *(
                    Entry(TOTAL_LABEL if k in summed else level_label(keys.get(k)))
                    for k in keys_order
                ),
                Entry(value, status, None, protection),
                Entry(format_value(cell.get("n"), "count")),
                Entry(format_share(cell.get("dominance_share"))),
                Entry(status_label(status), status),
                Entry(released, "", None, protection),
                Entry(reason),
            ]
        )
    return Layout(header, listed, [], row_header=False, omitted=len(cells) - len(shown))


def _crosstab(
    cells: list[Mapping[str, object]],
    row_key: str,
    column_key: str,
    entry: Callable[[Mapping[str, object]], Entry],
) -> Layout:
    by_level: dict[tuple[str, str], Mapping[str, object]] = {}
    row_levels: dict[str, str] = {}
    column_levels: dict[str, str] = {}
    total = json.dumps(["total"])  # never a level's JSON text
    for cell in cells:
        keys = mapping_of(cell, "keys")
        margin = text_of(cell, "margin")
        # JSON text keeps 1 and "1" apart while making any level hashable.
        r = total if margin in ("column", "total") else json.dumps(keys.get(row_key))
        c = total if margin in ("row", "total") else json.dumps(keys.get(column_key))
        if r != total:
            row_levels.setdefault(r, level_label(keys.get(row_key)))
        if c != total:
            column_levels.setdefault(c, level_label(keys.get(column_key)))
        by_level[(r, c)] = cell
    has_totals = any(total in pair for pair in by_level)
    if has_totals:
        row_levels[total], column_levels[total] = TOTAL_LABEL, TOTAL_LABEL
    grid = []
    for r, row_label in row_levels.items():
        line = [Entry(row_label)]
        for c in column_levels:
            found = by_level.get((r, c))
            line.append(entry(found) if found is not None else Entry(NO_VALUE))
        grid.append(line)
    header = [f"{row_key} \\ {column_key}", *column_levels.values()]
    return Layout(header, grid, [], row_header=True, total_row=has_totals)
