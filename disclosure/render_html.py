"""The disclosure report as one self-contained, accessible HTML page.

Inline CSS, no scripts, no links out; every string escaped with `html.escape`; tables
have header cells with `scope`; each failing or suppressed cell carries a symbol and a
hidden text, so nothing relies on colour alone. Differencing findings link to both
outputs they name, and each output links back to its findings.
"""

from __future__ import annotations

import html
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
    output_anchor,
    overall,
    policy_files,
    population_line,
    protection_lines,
    rule_lines,
    status_label,
    strings_of,
    text_of,
)
from disclosure.render_layout import Entry, Layout, layout

__all__ = ["render_html"]


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.4; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: bold; padding: .25rem 0; }
th, td { border: 1px solid #8a8a8a; padding: .25rem .5rem; text-align: right; }
th { background: #eee; }
th[scope=row], td.text, .list td { text-align: left; }
tr.total th, tr.total td, td.total { font-weight: bold; border-top: 2px solid #555; }
.fail { background: #fde0de; }
.review { background: #fff3c4; }
.suppressed { background-image: repeating-linear-gradient(45deg, transparent 0 6px,
              rgba(0,0,0,.08) 6px 8px); }
.pass-status { background: #e3f4e3; }
.mark { font-weight: bold; }
.status { font-weight: bold; padding: .1rem .4rem; border: 1px solid #8a8a8a; }
.hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
          clip: rect(0 0 0 0); white-space: nowrap; }
code { word-break: break-all; }
"""


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _status_html(status: str) -> str:
    css = "pass-status" if status == "pass" else status
    return f'<span class="status {_h(css)}">{_h(status_label(status))}</span>'


def render_html(report: Mapping[str, object]) -> str:
    """The report as one self-contained HTML page: inline CSS, no scripts, no links out."""
    title = "Disclosure control report"
    summary = mapping_of(report, "summary")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_h(title)}</h1>",
        f"<p>Overall: {_status_html(text_of(report, 'status'))} ({_h(overall(report))})</p>",
        "<dl>",
        *(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in context_lines(report)),
        "</dl>",
    ]
    if summary.get("protected"):
        parts.append(
            f"<p>{_h(summary['protected'])} output(s) are protected: some cells are "
            "suppressed or rounded in what would be released (marked below).</p>"
        )
    parts += _findings_html(report)
    parts += [
        "<h2>Rules</h2><ul>",
        *(f"<li>{_h(line)}</li>" for line in rule_lines(report)),
        "</ul><h2>Protection</h2><ul>",
        *(f"<li>{_h(line)}</li>" for line in protection_lines(report)),
        "</ul>",
        *_policy_html(report),
        '<p class="legend">Legend: '
        + "; ".join(
            f'<span class="mark">{_h(symbol)}</span> {_h(meaning)}'
            for symbol, meaning in [*MARKS.values(), *PROTECTION_MARKS.values()]
        )
        + ". Colours only repeat what the symbols say.</p>",
        "<h2>Outputs</h2>",
    ]
    for index, output in enumerate(items_of(report, "outputs"), start=1):
        parts += _output_html(report, index, output)
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _findings_html(report: Mapping[str, object]) -> list[str]:
    findings = finding_lines(report)
    if not findings:
        return []
    parts = ["<h2>Differencing: outputs that disclose together</h2><ol>"]
    for number, text, named in findings:
        links = " and ".join(
            f'<a href="#{output_anchor(position)}">{_h(name)}</a>'
            if position
            else f"{_h(name)} (released earlier)"
            for name, position in named
        )
        parts.append(f'<li id="finding-{number}">{links}: {_h(text)}</li>')
    parts.append("</ol>")
    return parts


def _policy_html(report: Mapping[str, object]) -> list[str]:
    files = policy_files(report)
    if not files:
        return ["<p>Policy file: not given</p>"]
    parts = ['<table class="list"><caption>Policy files</caption><thead><tr>']
    parts += [f'<th scope="col">{h}</th>' for h in ("layer", "file", "sha256")]
    parts.append("</tr></thead><tbody>")
    parts += [
        f'<tr><th scope="row">{_h(layer)}</th><td><code>{_h(path)}</code></td>'
        f"<td><code>{_h(digest)}</code></td></tr>"
        for layer, path, digest in files
    ]
    parts.append("</tbody></table>")
    notes = strings_of(mapping_of(report, "policy"), "notes")
    if notes:
        parts += ["<ul>", *(f"<li>{_h(n)}</li>" for n in notes), "</ul>"]
    return parts


def _output_html(
    report: Mapping[str, object], index: int, output: Mapping[str, object]
) -> list[str]:
    anchor = output_anchor(index)
    status = text_of(output, "status")
    parts = [
        f'<section id="{anchor}" aria-labelledby="{anchor}-title">',
        f'<h3 id="{anchor}-title">{index}. {_h(text_of(output, "name"))} '
        f"{_status_html(status)}</h3>",
    ]
    if text_of(output, "provenance", ""):
        parts.append(
            f'<p class="provenance"><strong>Evidence:</strong> '
            f"{_h(text_of(output, 'provenance'))}.</p>"
        )
    if rows := population_line(output):
        parts.append(f'<p class="population"><strong>Rows counted:</strong> {_h(rows)}.</p>')
    if text_of(output, "advisory", ""):
        parts.append(
            f'<p class="advisory"><strong>Advisory:</strong> '
            f"{_h(text_of(output, 'advisory'))}; confirm it yourself, by name.</p>"
        )
    checked = text_of(output, "check_status", status)
    if checked != status:
        parts.append(
            f"<p>Computed: {_status_html(checked)}; as it would be released: "
            f"{_status_html(status)}</p>"
        )
    parts.append(f"<p>{_h(text_of(output, 'summary'))}</p>")
    findings = strings_of(output, "findings")
    if findings:
        links = ", ".join(f'<a href="#finding-{_h(f)}">finding {_h(f)}</a>' for f in findings)
        parts.append(f"<p><strong>Differencing:</strong> {links}.</p>")
    for key, title in (("rules", "Rules for this output"), ("protection", "Protection")):
        if key in output:
            lines = (rule_lines if key == "rules" else protection_lines)(output)
            parts += [f"<p>{_h(title)} (stricter than the request's):</p><ul>"]
            parts += [f"<li>{_h(line)}</li>" for line in lines] + ["</ul>"]
    kind = text_of(output, "kind")
    parts += [f"<p>{_h(line)}</p>" for line in flag_lines(output)]
    if kind == "table":
        rules = mapping_of(output, "rules") or mapping_of(report, "rules")
        parts += _html_table(output, anchor, rules.get("dominance_n"))
    elif kind == "regression":
        parts += _html_regression(output)
    else:
        parts += [
            "<dl>",
            f"<dt>file</dt><dd><code>{_h(text_of(output, 'filename'))}</code></dd>",
            f"<dt>size</dt><dd>{_h(text_of(output, 'size'))} bytes</dd>",
            f"<dt>sha256</dt><dd><code>{_h(text_of(output, 'sha256'))}</code></dd>",
            f"<dt>description</dt><dd>{_h(text_of(output, 'description') or NO_VALUE)}</dd>",
            "</dl>",
            "<p><strong>? needs a person's review</strong>: no rule can tell what a "
            "free-form file reveals.</p>",
        ]
    parts.append("</section>")
    return parts


def _html_entry(entry: Entry, anchor: str, table: Layout, position: int) -> str:
    content = _h(entry.text)
    if table.row_header and position and entry.status in ("fail", "review"):
        symbol, meaning = MARKS[entry.status]
        content += (
            f' <span class="mark" aria-hidden="true">{_h(symbol)}</span>'
            f'<span class="hidden">({_h(meaning)})</span>'
        )
    if entry.protection in ("primary", "secondary"):
        symbol, meaning = PROTECTION_MARKS[entry.protection]
        content += (
            f' <span class="mark" aria-hidden="true">{_h(symbol)}</span>'
            f'<span class="hidden">({_h(meaning)})</span>'
        )
    if entry.could_be:
        content += f" <small>({_h(entry.could_be)})</small>"
    if entry.note is not None:
        content += f' <sup><a href="#{anchor}-note-{entry.note}">{entry.note}</a></sup>'
    classes = [entry.status] if entry.status in ("fail", "review") else []
    classes += ["suppressed"] if entry.protection in ("primary", "secondary") else []
    css = f' class="{_h(" ".join(classes))}"' if classes else ""
    return f"<td{css}>{content}</td>"


def _html_table(output: Mapping[str, object], anchor: str, dominance_n: object) -> list[str]:
    table = layout(output, dominance_n)
    if not table.rows:
        return ["<p>The table has no cells.</p>"]
    css = "crosstab" if table.row_header else "list"
    parts = [
        f'<table class="{css}"><caption>{_h(text_of(output, "name"))}</caption>',
        "<thead><tr>",
        *(f'<th scope="col">{_h(h)}</th>' for h in table.header),
        "</tr></thead><tbody>",
    ]
    for row in table.rows:
        cells = []
        for position, entry in enumerate(row):
            if position == 0 and table.row_header:
                cells.append(f'<th scope="row">{_h(entry.text)}</th>')
            else:
                cells.append(_html_entry(entry, anchor, table, position))
        opening = '<tr class="total">' if table.total_row and row is table.rows[-1] else "<tr>"
        parts.append(opening + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if table.omitted:
        parts.append(
            f"<p>{table.omitted:,} passing cells are not listed (report.json has them).</p>"
        )
    if table.notes:
        parts.append("<p>Cells that fail, need review or are suppressed:</p><ol>")
        parts += [
            f'<li id="{anchor}-note-{n.number}">{_h(n.label)}: '
            f'<span class="mark">{_h(MARKS.get(n.status, ("", ""))[0])} {_h(n.status)}</span>: '
            f"{_h(n.reason)}</li>"
            for n in table.notes
        ]
        parts.append("</ol>")
    return parts


def _html_regression(output: Mapping[str, object]) -> list[str]:
    parts = [f"<p><strong>{_h(r)}</strong></p>" for r in strings_of(output, "reasons")]
    parts += [
        f"<p>Observations: {_h(text_of(output, 'n_obs'))}; residual degrees of freedom: "
        f"{_h(text_of(output, 'df_resid'))} (minimum {_h(text_of(output, 'min_dof'))}).</p>",
        '<table class="list"><caption>Coefficients</caption><thead><tr>',
        *(
            f'<th scope="col">{h}</th>'
            for h in ("term", "estimate", "std error", "statistic", "p value")
        ),
        "</tr></thead><tbody>",
    ]
    for row in items_of(output, "coefficients"):
        parts.append(
            f'<tr><th scope="row">{_h(text_of(row, "term"))}</th>'
            f"<td>{_h(format_number(row.get('estimate')))}</td>"
            f"<td>{_h(format_number(row.get('std_error')))}</td>"
            f"<td>{_h(format_number(row.get('statistic')))}</td>"
            f"<td>{_h(format_p(row.get('p_value')))}</td></tr>"
        )
    parts.append("</tbody></table>")
    return parts
