"""A disclosure report's outputs, laid out for the review page.

Reads only the structure of report.json, defensively: a key that is missing, null or of
an unexpected type shows as "–" rather than failing the page, and keys this module does
not know are ignored, so reports written by older or newer disclosure engines render.
A cell is marked for every flag it carries: failing, needing review, suppressed,
rounded, empty (no records) or without a value (its records all lack one), each with a
symbol and a hidden word (never colour alone) and its reasons listed under the table.
Escaping is the templates' job (autoescape): nothing here builds markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NO_VALUE = "–"
#: flag -> (symbol, what it means); the order is the order marks are shown in.
FLAGS = {
    "fail": ("✗", "fails a rule"),
    "review": ("?", "needs review"),
    "suppressed": ("S", "suppressed"),
    "rounded": ("R", "rounded"),
    "empty": ("0", "empty: no records"),
    "no_value": ("∅", "no value: its records all lack one"),
}
STATUS_SYMBOLS = {"pass": "✓", "review": "?", "fail": "✗"}
#: Keys a newer report may use for the value that would be published after protection.
_PUBLISHED_KEYS = ("published", "published_value", "released_value", "rounded_value")


@dataclass
class CellView:
    text: str
    flags: list[str] = field(default_factory=list)
    note: int | None = None
    numeric: bool = True


@dataclass
class Note:
    number: int
    label: str
    flags: list[str]
    reasons: list[str]


@dataclass
class TableView:
    header: list[str]
    rows: list[list[CellView]]
    notes: list[Note]
    crosstab: bool  # the first cell of each row names the row (a row header)


@dataclass
class OutputView:
    name: str
    kind: str
    status: str
    summary: str
    table: TableView | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def text(value: object) -> str:
    """A value as text; null as "–"."""
    return NO_VALUE if value is None else str(value)


def number(value: object, statistic: str = "") -> str:
    """A number for people: counts whole, magnitudes with 2 decimals (3 significant
    figures below 1), "–" for anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NO_VALUE if value is None else str(value)
    if statistic == "count" or (isinstance(value, int)):
        return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def level(value: object, total: bool = False) -> str:
    """A key's level; a null level reads "(missing)", or "Total" in a margin cell."""
    if value is None:
        return "Total" if total else "(missing)"
    return str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _items(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def cell_flags(cell: Mapping[str, Any], rounded_to: object = None) -> tuple[list[str], list[str]]:
    """A cell's flags (fail, review, suppressed, rounded, empty, no value) and every
    reason it gives.

    Suppression may be a flag (`suppressed: true`, with `suppression: "primary"`) or the
    reason itself (`suppressed: "secondary ..."`); a cell is rounded if it says so, or if
    the table rounds (`rounded_to`) and its published value differs from its value.
    """
    flags, reasons = [], []
    status = cell.get("status")
    if status in ("fail", "review"):
        flags.append(str(status))
    suppressed, how = cell.get("suppressed"), cell.get("suppression")
    if suppressed or how:
        flags.append("suppressed")
        why = how if isinstance(how, str) and how else suppressed
        if isinstance(why, str) and why:
            reasons.append(f"suppressed ({why})")
    published = next((cell[k] for k in _PUBLISHED_KEYS if k in cell), cell.get("value"))
    rounds = rounded_to not in (None, 0, 1, False) and published not in (None, cell.get("value"))
    if cell.get("rounded") or cell.get("rounded_value") is not None or (rounds and not suppressed):
        flags.append("rounded")
        if rounds and not cell.get("rounding_reason"):
            reasons.append(f"rounded to base {rounded_to}")
    if cell.get("empty_cell") is True:
        flags.append("empty")
    if cell.get("no_value") is True:
        flags.append("no_value")
    for key, value in cell.items():
        if (key == "reason" or key.endswith("_reason")) and isinstance(value, str) and value:
            reasons.append(value)
        elif key == "reasons":
            reasons += _strings(value)
    return flags, list(dict.fromkeys(reasons))


def cell_text(cell: Mapping[str, Any], statistic: str) -> str:
    """The cell's value, and the published value beside it when rounding changed it (a
    suppressed cell's mark already says nothing of it is published)."""
    shown = number(cell.get("value"), statistic)
    if cell.get("suppressed") or cell.get("suppression"):
        return shown
    for key in _PUBLISHED_KEYS:
        if key in cell and cell[key] != cell.get("value"):
            published = cell[key]
            return f"{shown} → {NO_VALUE if published is None else number(published, statistic)}"
    return shown


def table_view(output: Mapping[str, Any]) -> TableView:
    """A table output as a cross-tab (one row key, one column key) or a list of cells."""
    rows, columns = _strings(output.get("rows")), _strings(output.get("columns"))
    statistic = text(output.get("statistic"))
    cells = _items(output.get("cells"))
    rounded_to = output.get("rounded_to")
    notes: list[Note] = []

    def view(cell: Mapping[str, Any], label: str) -> CellView:
        flags, reasons = cell_flags(cell, rounded_to)
        note = None
        if flags:
            notes.append(Note(len(notes) + 1, label, flags, reasons))
            note = len(notes)
        return CellView(cell_text(cell, statistic), flags, note)

    if len(rows) == 1 and len(columns) == 1:
        return _crosstab(rows[0], columns[0], cells, view, notes)
    keys = [*rows, *columns]
    header = [*keys, statistic if statistic != NO_VALUE else "value", "contributors"]
    listed = []
    for cell in cells:
        levels = _mapping(cell.get("keys"))
        total = bool(cell.get("margin"))
        label = ", ".join(f"{k} {level(levels.get(k), total)}" for k in keys)
        listed.append(
            [
                *(CellView(level(levels.get(k), total), numeric=False) for k in keys),
                view(cell, label),
                CellView(number(cell.get("n"), "count")),
            ]
        )
    return TableView(header, listed, notes, crosstab=False)


def _crosstab(
    row_key: str,
    column_key: str,
    cells: list[Mapping[str, Any]],
    view: Any,
    notes: list[Note],
) -> TableView:
    by_level: dict[tuple[str, str], Mapping[str, Any]] = {}
    row_levels: dict[str, object] = {}
    column_levels: dict[str, object] = {}
    margins: set[str] = set()
    for cell in cells:
        levels = _mapping(cell.get("keys"))
        # JSON text keeps 1 and "1" apart and makes any level hashable.
        r, c = json.dumps(levels.get(row_key)), json.dumps(levels.get(column_key))
        row_levels.setdefault(r, levels.get(row_key))
        column_levels.setdefault(c, levels.get(column_key))
        by_level[(r, c)] = cell
        if cell.get("margin"):  # a total: its null level is "all of them", not missing
            margins.update(key for key in (r, c) if key == "null")
    grid = []
    for r, row_level in row_levels.items():
        row_text = level(row_level, r in margins)
        line = [CellView(row_text, numeric=False)]
        for c, column_level in column_levels.items():
            found = by_level.get((r, c))
            label = f"{row_key} {row_text}, {column_key} {level(column_level, c in margins)}"
            line.append(view(found, label) if found is not None else CellView(NO_VALUE))
        grid.append(line)
    header = [
        f"{row_key} \\ {column_key}",
        *(level(v, c in margins) for c, v in column_levels.items()),
    ]
    return TableView(header, grid, notes, crosstab=True)


def regression_view(output: Mapping[str, Any]) -> TableView:
    """A regression's coefficients as a table."""
    rows = [
        [
            CellView(text(row.get("term")), numeric=False),
            *(
                CellView(number(row.get(key)))
                for key in ("estimate", "std_error", "statistic", "p_value")
            ),
        ]
        for row in _items(output.get("coefficients"))
    ]
    header = ["term", "estimate", "std error", "statistic", "p value"]
    return TableView(header, rows, [], crosstab=True)


def output_views(report: Mapping[str, Any]) -> dict[str, OutputView]:
    """Every output of a report by name, ready to draw."""
    views = {}
    for output in _items(report.get("outputs")):
        kind = text(output.get("kind"))
        view = OutputView(
            name=text(output.get("name")),
            kind=kind,
            status=text(output.get("status")),
            summary=text(output.get("summary")),
            reasons=_strings(output.get("reasons")),
        )
        if kind == "table":
            view.table = table_view(output)
            view.facts = [
                (what, number(output[key], "count"))
                for key, what in (
                    ("empty_cells", "empty cells (no records)"),
                    ("no_value_cells", "cells with no value"),
                )
                if isinstance(output.get(key), int) and output[key] > 0
            ]
        elif kind == "regression":
            view.table = regression_view(output)
            view.facts = [
                ("model", text(output.get("model"))),
                ("observations", number(output.get("n_obs"), "count")),
                ("residual degrees of freedom", number(output.get("df_resid"), "count")),
                ("minimum", number(output.get("min_dof"), "count")),
            ]
        else:
            view.facts = [
                ("file", text(output.get("filename"))),
                ("size", f"{text(output.get('size'))} bytes"),
                ("sha256", text(output.get("sha256"))),
                ("description", text(output.get("description") or None)),
            ]
        views[view.name] = view
    return views


def rule_lines(report: Mapping[str, Any]) -> list[str]:
    """The report's rule parameters, one "name = value" line each."""
    return [f"{k} = {text(v)}" for k, v in _mapping(report.get("rules")).items()]


def finding_lines(report: Mapping[str, Any]) -> list[str]:
    """The report's differencing findings (outputs that together disclose), one line each."""
    lines = []
    for finding in _items(report.get("differencing")):
        said = next(
            (finding[k] for k in ("summary", "message", "reason", "text") if finding.get(k)), None
        )
        outputs = ", ".join(_strings(finding.get("outputs")))
        head = f"{outputs}: " if outputs else ""
        lines.append(head + (str(said) if said else json.dumps(dict(finding), default=str)))
    return lines
