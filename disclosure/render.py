"""What the human versions of a disclosure report share: reading it, numbers, layout.

Both read only the dict `disclosure.report.build_report` makes (or its stored JSON):
a summary first (overall status, counts, the rules and the policy file's hash), then
each output. A table with one row key and one column key is drawn as a cross-tab; other
tables as a list of cells. Every cell that fails or needs review carries a symbol (not
only a colour) and its reason in the notes under the table.

The renderers (`render_markdown`, `render_html`) escape every string from the report:
names, levels and descriptions come from researchers, and a report must not become a way
to put markup in front of a checker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from disclosure.errors import DisclosureInputError
from disclosure.rules import Rules

__all__ = [
    "MARKS",
    "NO_VALUE",
    "Layout",
    "Note",
    "context_lines",
    "format_number",
    "format_p",
    "format_share",
    "format_value",
    "items_of",
    "layout",
    "level_label",
    "mapping_of",
    "overall",
    "rule_lines",
    "status_label",
    "strings_of",
    "text_of",
]

#: Symbol and meaning of each status; the symbol is what makes a cell visible without colour.
MARKS = {
    "fail": ("✗", "fails a rule: must not be released as it is"),
    "review": ("?", "needs a person's review"),
    "pass": ("✓", "passes every rule"),
}
MISSING_LEVEL = "(missing)"
NO_VALUE = "–"


# --- reading the report -----------------------------------------------------------------


def text_of(data: Mapping[str, object], key: str, default: str = "") -> str:
    """`data[key]` as text (`default` when absent or null)."""
    value = data.get(key)
    return default if value is None else str(value)


def mapping_of(data: Mapping[str, object], key: str) -> Mapping[str, object]:
    """`data[key]` if it is a mapping, else an empty one (a stored report may be old)."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def items_of(data: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    """The mappings in the list `data[key]`."""
    value = data.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def strings_of(data: Mapping[str, object], key: str) -> list[str]:
    """The list `data[key]` as text."""
    value = data.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


# --- numbers and labels -----------------------------------------------------------------


def format_number(value: object) -> str:
    """A magnitude for people: 2 decimals, 3 significant figures below 1, "–" if none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NO_VALUE
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def format_value(value: object, statistic: str) -> str:
    """A cell's value: counts as whole numbers, magnitudes as `format_number`."""
    if statistic == "count" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{int(value):,}"
    return format_number(value)


def format_share(value: object) -> str:
    """A share of a total as a percentage with one decimal."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NO_VALUE
    return f"{value * 100:.1f}%"


def format_p(value: object) -> str:
    """A p-value, with "<0.001" for the very small."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0.001:
        return "<0.001"
    return format_number(value)


def level_label(value: object) -> str:
    """A key's level as text; a null level reads "(missing)"."""
    return MISSING_LEVEL if value is None else str(value)


def status_label(status: str) -> str:
    """A status with its symbol, e.g. "✗ FAIL"."""
    return f"{MARKS.get(status, ('', ''))[0]} {status.upper()}".strip()


def rule_lines(report: Mapping[str, object]) -> list[str]:
    """The report's rules, one sentence each."""
    try:
        return Rules.from_mapping(mapping_of(report, "rules")).describe()
    except DisclosureInputError:  # an unreadable stored report: show the raw parameters
        return [f"{k} = {v}" for k, v in mapping_of(report, "rules").items()]


def context_lines(report: Mapping[str, object]) -> list[tuple[str, str]]:
    """The report's context (job, project, author ...) as (name, text) pairs."""
    return [(str(k), _plain(v)) for k, v in mapping_of(report, "context").items()]


def _plain(value: object) -> str:
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False)
    return level_label(value) if value is not None else ""


def overall(report: Mapping[str, object]) -> str:
    """How many outputs there are, and how many have each status."""
    summary = mapping_of(report, "summary")
    counts = ", ".join(f"{summary.get(s, 0)} {s}" for s in MARKS)
    return f"{summary.get('outputs', 0)} outputs: {counts}"


# --- the layout both renderers share ----------------------------------------------------


@dataclass
class Note:
    """A cell that fails or needs review, listed under its table."""

    number: int
    label: str  # e.g. "ward A, sex M"
    status: str
    reason: str


@dataclass
class Layout:
    """A table ready to draw: a header row, then rows of (text, status, note number)."""

    header: list[str]
    rows: list[list[tuple[str, str, int | None]]]
    notes: list[Note]
    row_header: bool  # the first column names the row (a cross-tab)


def layout(output: Mapping[str, object], dominance_n: object = 2) -> Layout:
    rows, columns = strings_of(output, "rows"), strings_of(output, "columns")
    statistic = text_of(output, "statistic")
    cells = items_of(output, "cells")
    notes: list[Note] = []

    def note_for(cell: Mapping[str, object], keys: Mapping[str, object]) -> int | None:
        status = text_of(cell, "status")
        if status == "pass":
            return None
        label = ", ".join(f"{k} {level_label(v)}" for k, v in keys.items())
        notes.append(Note(len(notes) + 1, label, status, text_of(cell, "reason")))
        return len(notes)

    if len(rows) == 1 and len(columns) == 1:
        row_key, column_key = rows[0], columns[0]
        by_level: dict[tuple[str, str], Mapping[str, object]] = {}
        row_levels: dict[str, object] = {}
        column_levels: dict[str, object] = {}
        for cell in cells:
            keys = mapping_of(cell, "keys")
            # JSON text keeps 1 and "1" apart while making any level hashable.
            r, c = json.dumps(keys.get(row_key)), json.dumps(keys.get(column_key))
            row_levels.setdefault(r, keys.get(row_key))
            column_levels.setdefault(c, keys.get(column_key))
            by_level[(r, c)] = cell
        grid = []
        for r, row_level in row_levels.items():
            line: list[tuple[str, str, int | None]] = [(level_label(row_level), "", None)]
            for c in column_levels:
                cell = by_level.get((r, c), {})
                number = note_for(cell, mapping_of(cell, "keys")) if cell else None
                text = format_value(cell.get("value"), statistic) if cell else NO_VALUE
                line.append((text, text_of(cell, "status"), number))
            grid.append(line)
        corner = f"{row_key} \\ {column_key}"
        header = [corner, *(level_label(level) for level in column_levels.values())]
        return Layout(header, grid, notes, row_header=True)

    keys_order = [*rows, *columns]
    share = f"share of the largest {dominance_n}"
    header = [*keys_order, "value", "contributors", share, "status", "reason"]
    listed: list[list[tuple[str, str, int | None]]] = []
    for cell in cells:
        keys = mapping_of(cell, "keys")
        status = text_of(cell, "status")
        listed.append(
            [
                *((level_label(keys.get(k)), "", None) for k in keys_order),
                (format_value(cell.get("value"), statistic), status, None),
                (format_value(cell.get("n"), "count"), "", None),
                (format_share(cell.get("dominance_share")), "", None),
                (status_label(status), status, None),
                (text_of(cell, "reason"), "", None),
            ]
        )
    return Layout(header, listed, notes, row_header=False)
