"""What the human versions of a disclosure report share: reading it, numbers, labels
(the layout of a table is `disclosure.render_layout`).

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
from collections.abc import Mapping

from disclosure.errors import DisclosureInputError
from disclosure.protection import Protection
from disclosure.rules import Rules

__all__ = [
    "MARKS",
    "NO_VALUE",
    "PROTECTION_MARKS",
    "context_lines",
    "finding_lines",
    "flag_lines",
    "format_number",
    "format_p",
    "format_share",
    "format_value",
    "items_of",
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
