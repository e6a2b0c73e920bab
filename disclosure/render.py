"""What the human versions of a disclosure report share: reading it, numbers, layout.

Both read only the dict `disclosure.report.build_report` makes (or its stored JSON):
a summary first (overall status, counts, protection, differencing findings, the rules
and the policy files with their hashes), then each output. A table with one row key and
one column key is drawn as a cross-tab with its totals; other tables as a list of
cells. Every cell that fails, needs review or is suppressed carries a symbol (not only a
colour) and, in the notes under the table, its reason.

The renderers (`render_markdown`, `render_html`) escape every string from the report:
names, levels and descriptions come from researchers, and a report must not become a way
to put markup in front of a checker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from disclosure.errors import DisclosureInputError
from disclosure.protection import Protection
from disclosure.rules import Rules

__all__ = [
    "LIST_LIMIT",
    "MARKS",
    "NO_VALUE",
    "PROTECTION_MARKS",
    "Entry",
    "Layout",
    "Note",
    "context_lines",
    "finding_lines",
    "flag_lines",
    "format_number",
    "format_p",
    "format_share",
    "format_value",
    "items_of",
    "layout",
    "level_label",
    "mapping_of",
    "output_anchor",
    "overall",
    "policy_files",
    "protection_lines",
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
#: Symbol and meaning of what protection did to a cell.
PROTECTION_MARKS = {
    "primary": ("⊘", "suppressed in the release: it fails a rule"),
    "secondary": ("⊘²", "suppressed in the release so other cells cannot be worked out"),
    "rounded": ("≈", "released rounded (the value after the arrow)"),
}
MISSING_LEVEL = "(missing)"
#: A list longer than this shows only the cells that fail, need review or are
#: protected: thousands of passing rows hide the few a checker must see.
LIST_LIMIT = 2_000
TOTAL_LABEL = "Total"
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


def output_anchor(index: int) -> str:
    """The anchor of the `index`-th output (1-based) in the HTML report."""
    return f"output-{index}"


def rule_lines(report: Mapping[str, object], key: str = "rules") -> list[str]:
    """The report's rules, one sentence each."""
    try:
        return Rules.from_mapping(mapping_of(report, key)).describe()
    except DisclosureInputError:  # an unreadable stored report: show the raw parameters
        return [f"{k} = {v}" for k, v in mapping_of(report, key).items()]


def protection_lines(report: Mapping[str, object], key: str = "protection") -> list[str]:
    """The report's protection settings, one sentence each."""
    try:
        return Protection.from_mapping(mapping_of(report, key)).describe()
    except DisclosureInputError:
        return [f"{k} = {v}" for k, v in mapping_of(report, key).items()]


def policy_files(report: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """(layer, path, sha256) of every policy file the rules came from."""
    policy = mapping_of(report, "policy")
    files = items_of(policy, "files")
    if files:
        return [(text_of(f, "layer"), text_of(f, "path"), text_of(f, "sha256")) for f in files]
    if "path" in policy:  # a single policy file (format 1 reports, the library used alone)
        return [("policy", text_of(policy, "path"), text_of(policy, "sha256", "not given"))]
    return []


def population_line(output: Mapping[str, object]) -> str:
    """Which rows a table counts, in one sentence (its datasets with versions, its link,
    its filters), or '' when the report does not say (an output that is not a table)."""
    population = mapping_of(output, "population")
    if not population:
        return ""
    datasets = mapping_of(population, "datasets")
    said = ", ".join(f"{name} v{version}" for name, version in datasets.items()) or "its data"
    if population.get("link"):
        said += f", linked to {population['link']}"
    filters = population.get("filters")
    if filters is None:
        return said + "; which rows its code kept is the code's (a python step)"
    if isinstance(filters, list) and filters:
        said += "; only rows where " + " and ".join(str(f) for f in filters)
        written = population.get("written")
        if isinstance(written, list) and written != filters:
            said += (
                " (written as " + " and ".join(str(f) for f in written) + "; a condition "
                "every value in the data meets is read as 'not null')"
            )
        return said
    return said + "; every row"


def flag_lines(output: Mapping[str, object]) -> list[str]:
    """A table's records with no value, empty cells and cells with no value, one sentence
    each (none when there are none); older reports without the counts give fewer."""
    if text_of(output, "kind") != "table":
        return []
    said = (
        ("missing", "Records with no value (not counted as contributors)"),
        ("empty_cells", "Empty cells (no records; flagged empty_cell)"),
        ("no_value_cells", f"Cells with no value (shown as {NO_VALUE}; flagged no_value)"),
    )
    lines = []
    for key, words in said:
        count = output.get(key)
        if isinstance(count, int) and not isinstance(count, bool) and count:
            lines.append(f"{words}: {count:,}.")
    return lines


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


def finding_lines(report: Mapping[str, object]) -> list[tuple[int, str, list[tuple[str, int]]]]:
    """Each differencing finding: its id, its sentence, and the outputs it names with
    their position in this report (0 for an output released earlier)."""
    positions = {text_of(o, "name"): i for i, o in enumerate(items_of(report, "outputs"), start=1)}
    lines = []
    for finding in items_of(report, "differencing"):
        found = finding.get("jobs")
        jobs: list[object] = found if isinstance(found, list) else [None, None]
        named = [
            (name, positions.get(name, 0) if job is None else 0)
            for name, job in zip(strings_of(finding, "outputs"), jobs, strict=False)
            if name  # a finding on one table alone names no second
        ]
        cells = strings_of(finding, "cells")
        count = finding.get("count")
        extra = count - len(cells) if isinstance(count, int) else 0
        more = f" and {extra} more" if extra > 0 else ""
        text = f"{status_label(text_of(finding, 'status'))}: {text_of(finding, 'message')}" + (
            f" (e.g. {'; '.join(cells)}{more})" if cells else ""
        )
        number = finding.get("id")
        lines.append((int(number) if isinstance(number, int) else 0, text, named))
    return lines


# --- the layout both renderers share ----------------------------------------------------


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
