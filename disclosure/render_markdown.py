"""The disclosure report as Markdown, for a checker reading it in a terminal or a forge."""

from __future__ import annotations

from collections.abc import Mapping

from disclosure.render import (
    MARKS,
    NO_VALUE,
    context_lines,
    format_number,
    format_p,
    items_of,
    layout,
    mapping_of,
    overall,
    rule_lines,
    status_label,
    strings_of,
    text_of,
)

__all__ = ["render_markdown"]


def _md(text: str) -> str:
    """Escape text for Markdown (and the HTML many Markdown viewers let through)."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "\\`*_[]|~#!":
        text = text.replace(char, "\\" + char)
    return text


def render_markdown(report: Mapping[str, object]) -> str:
    """The report as Markdown: a summary, then every output with its verdict."""
    out = [
        "# Disclosure control report",
        "",
        f"**Overall: {status_label(text_of(report, 'status'))}** ({overall(report)})",
        "",
    ]
    out += [f"- **{_md(k)}**: {_md(v)}" for k, v in context_lines(report)]
    out += ["", "## Rules", ""]
    out += [f"- {_md(line)}" for line in rule_lines(report)]
    policy = mapping_of(report, "policy")
    out += [
        "",
        f"Policy file: {_md(text_of(policy, 'path', 'not given'))} "
        f"(sha256 {_md(text_of(policy, 'sha256', 'not given'))})",
        "",
        "Legend: " + "; ".join(f"**{symbol}** {meaning}" for symbol, meaning in MARKS.values()),
        "",
        "## Outputs",
    ]
    for index, output in enumerate(items_of(report, "outputs"), start=1):
        status = text_of(output, "status")
        out += ["", f"### {index}. {_md(text_of(output, 'name'))}: {status_label(status)}", ""]
        out += [_md(text_of(output, "summary")), ""]
        kind = text_of(output, "kind")
        if kind == "table":
            out += _markdown_table(output, mapping_of(report, "rules").get("dominance_n"))
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
    return "\n".join(out) + "\n"


def _markdown_table(output: Mapping[str, object], dominance_n: object) -> list[str]:
    table = layout(output, dominance_n)
    if not table.rows:
        return ["The table has no cells."]

    def cell(text: str, status: str, note: int | None) -> str:
        marked = _md(text)
        if status in ("fail", "review") and table.row_header:
            marked += f" **{MARKS[status][0]}**"
        if note is not None:
            marked += f" ({note})"
        return marked

    lines = [
        "| " + " | ".join(_md(h) for h in table.header) + " |",
        "|" + "|".join(" --- " for _ in table.header) + "|",
    ]
    lines += ["| " + " | ".join(cell(*c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines += ["", "Cells that fail or need review:", ""]
        lines += [
            f"{n.number}. {_md(n.label)}: **{MARKS[n.status][0]} {n.status}**: {_md(n.reason)}"
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
