"""The disclosure report as Markdown, for a checker reading it in a terminal or a forge."""

from __future__ import annotations

from collections.abc import Mapping

from disclosure.render import (
    MARKS,
    NO_VALUE,
    PROTECTION_MARKS,
    context_lines,
    finding_lines,
    flag_lines,
    format_number,
    format_p,
    items_of,
    mapping_of,
    overall,
    policy_files,
    population_line,
    protection_lines,
    rule_lines,
    status_label,
    strings_of,
    text_of,
)
from disclosure.render_layout import Entry, layout

__all__ = ["render_markdown"]


_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", **{c: "\\" + c for c in "\\`*_[]|~#!"}}
)


def _md(text: str) -> str:
    """Escape text for Markdown (and the HTML many Markdown viewers let through)."""
    return " ".join(str(text).split()).translate(_ESCAPES)


def render_markdown(report: Mapping[str, object]) -> str:
    """The report as Markdown: a summary, then every output with its verdict."""
    out = [
        "# Disclosure control report",
        "",
        f"**Overall: {status_label(text_of(report, 'status'))}** ({overall(report)})",
        "",
    ]
    out += [f"- **{_md(k)}**: {_md(v)}" for k, v in context_lines(report)]
    summary = mapping_of(report, "summary")
    if summary.get("protected"):
        out.append(f"- **protected outputs**: {summary['protected']} (cells suppressed or rounded)")
    findings = finding_lines(report)
    if findings:
        out += ["", "## Differencing: outputs that disclose together", ""]
        for number, text, named in findings:
            where = " and ".join(
                f"output {position} ({_md(name)})" if position else f"{_md(name)} (released)"
                for name, position in named
            )
            out.append(f"{number}. {where}: {_md(text)}")
    out += ["", "## Rules", ""]
    out += [f"- {_md(line)}" for line in rule_lines(report)]
    out += ["", "## Protection", ""]
    out += [f"- {_md(line)}" for line in protection_lines(report)]
    files = policy_files(report)
    out += ["", "Policy files:" if files else "Policy file: not given", ""]
    out += [f"- {_md(layer)}: {_md(path)} (sha256 {_md(digest)})" for layer, path, digest in files]
    out += [f"- note: {_md(n)}" for n in strings_of(mapping_of(report, "policy"), "notes")]
    legend = [*MARKS.values(), *PROTECTION_MARKS.values()]
    out += ["", "Legend: " + "; ".join(f"**{symbol}** {meaning}" for symbol, meaning in legend)]
    out += ["", "## Outputs"]
    for index, output in enumerate(items_of(report, "outputs"), start=1):
        out += _markdown_output(report, index, output)
    return "\n".join(out) + "\n"


def _markdown_output(
    report: Mapping[str, object], index: int, output: Mapping[str, object]
) -> list[str]:
    status = text_of(output, "status")
    out = ["", f"### {index}. {_md(text_of(output, 'name'))}: {status_label(status)}", ""]
    if text_of(output, "provenance", ""):
        out += [f"**Evidence:** {_md(text_of(output, 'provenance'))}.", ""]
    if rows := population_line(output):
        out += [f"**Rows counted:** {_md(rows)}.", ""]
    if text_of(output, "advisory", ""):
        out += [f"**Advisory:** {_md(text_of(output, 'advisory'))}; confirm it by name.", ""]
    checked = text_of(output, "check_status", status)
    if checked != status:
        out += [f"Computed: {status_label(checked)}; as released: {status_label(status)}.", ""]
    out += [_md(text_of(output, "summary")), ""]
    for finding in strings_of(output, "findings"):
        out.append(f"- differencing finding {finding}: see the list at the top")
    for key, title in (("rules", "Rules for this output"), ("protection", "Protection")):
        if key in output:
            lines = (rule_lines if key == "rules" else protection_lines)(output)
            out += [f"{title} (stricter than the request's):", ""]
            out += [f"- {_md(line)}" for line in lines] + [""]
    kind = text_of(output, "kind")
    for line in flag_lines(output):
        out += [_md(line), ""]
    if kind == "table":
        rules = mapping_of(output, "rules") or mapping_of(report, "rules")
        out += _markdown_table(output, rules.get("dominance_n"))
    elif kind == "regression":
        out += _markdown_regression(output)
    else:
        out += [
            f"- file: {_md(text_of(output, 'filename'))}",
            f"- size: {text_of(output, 'size')} bytes",
            f"- sha256: {_md(text_of(output, 'sha256'))}",
            f"- description: {_md(text_of(output, 'description')) or NO_VALUE}",
            "- **? needs a person's review**: no rule can tell what a free-form file reveals",
        ]
    return out


def _markdown_table(output: Mapping[str, object], dominance_n: object) -> list[str]:
    table = layout(output, dominance_n)
    if not table.rows:
        return ["The table has no cells."]

    def cell(entry: Entry, position: int) -> str:
        marked = _md(entry.text)
        # A list has a status column; a cross-tab shows the status on the cell itself.
        if table.row_header and position and entry.status in ("fail", "review"):
            marked += f" **{MARKS[entry.status][0]}**"
        if entry.protection in ("primary", "secondary"):
            marked += f" **{PROTECTION_MARKS[entry.protection][0]}**"
        if entry.could_be:
            marked += f" ({_md(entry.could_be)})"
        if entry.note is not None:
            marked += f" ({entry.note})"
        return marked

    lines = [
        "| " + " | ".join(_md(h) for h in table.header) + " |",
        "|" + "|".join(" --- " for _ in table.header) + "|",
    ]
    lines += [
        "| " + " | ".join(cell(entry, i) for i, entry in enumerate(row)) + " |"
        for row in table.rows
    ]
    if table.omitted:
        lines += ["", f"{table.omitted:,} passing cells are not listed (report.json has them)."]
    if table.notes:
        lines += ["", "Cells that fail, need review or are suppressed:", ""]
        lines += [
            f"{n.number}. {_md(n.label)}: **{MARKS.get(n.status, ('', ''))[0]} {n.status}**: "
            f"{_md(n.reason)}"
            for n in table.notes
        ]
    return lines


def _markdown_regression(output: Mapping[str, object]) -> list[str]:
    lines = [f"**{_md(r)}**" for r in strings_of(output, "reasons")]
    lines += [
        "",
        f"- observations: {text_of(output, 'n_obs')}; residual degrees of freedom: "
        f"{text_of(output, 'df_resid')} (minimum {text_of(output, 'min_dof')})",
        "",
        "| term | estimate | std error | statistic | p value |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in items_of(output, "coefficients"):
        lines.append(
            f"| {_md(text_of(row, 'term'))} | {format_number(row.get('estimate'))} | "
            f"{format_number(row.get('std_error'))} | {format_number(row.get('statistic'))} | "
            f"{format_p(row.get('p_value'))} |"
        )
    return lines
