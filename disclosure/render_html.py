"""The disclosure report as one self-contained, accessible HTML page.

Inline CSS, no scripts, no links out; every string escaped with `html.escape`; tables
have header cells with `scope`; each failing cell carries a symbol and a hidden text, so
nothing relies on colour alone.
"""

from __future__ import annotations

import html
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

__all__ = ["render_html"]


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.4; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: bold; padding: .25rem 0; }
th, td { border: 1px solid #8a8a8a; padding: .25rem .5rem; text-align: right; }
th { background: #eee; }
th[scope=row], td.text, .list td { text-align: left; }
.fail { background: #fde0de; }
.review { background: #fff3c4; }
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
    policy = mapping_of(report, "policy")
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
        "<h2>Rules</h2><ul>",
        *(f"<li>{_h(line)}</li>" for line in rule_lines(report)),
        "</ul>",
        f"<p>Policy file: <code>{_h(text_of(policy, 'path', 'not given'))}</code>, sha256 "
        f"<code>{_h(text_of(policy, 'sha256', 'not given'))}</code></p>",
        '<p class="legend">Legend: '
        + "; ".join(
            f'<span class="mark">{_h(symbol)}</span> {_h(meaning)}'
            for symbol, meaning in MARKS.values()
        )
        + ". Colours only repeat what the symbols say.</p>",
        "<h2>Outputs</h2>",
    ]
    for index, output in enumerate(items_of(report, "outputs"), start=1):
        anchor = f"output-{index}"
        parts += [
            f'<section id="{anchor}" aria-labelledby="{anchor}-title">',
            f'<h3 id="{anchor}-title">{index}. {_h(text_of(output, "name"))} '
            f"{_status_html(text_of(output, 'status'))}</h3>",
            f"<p>{_h(text_of(output, 'summary'))}</p>",
        ]
        kind = text_of(output, "kind")
        if kind == "table":
            parts += _html_table(output, anchor, mapping_of(report, "rules").get("dominance_n"))
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
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


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
        for position, (text, status, note) in enumerate(row):
            if position == 0 and table.row_header:
                cells.append(f'<th scope="row">{_h(text)}</th>')
                continue
            content = _h(text)
            if status in ("fail", "review") and table.row_header:
                symbol, meaning = MARKS[status]
                content += (
                    f' <span class="mark" aria-hidden="true">{_h(symbol)}</span>'
                    f'<span class="hidden">({_h(meaning)})</span>'
                )
            if note is not None:
                content += f' <sup><a href="#{anchor}-note-{note}">{note}</a></sup>'
            css_class = f' class="{_h(status)}"' if status in ("fail", "review") else ""
            cells.append(f"<td{css_class}>{content}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if table.notes:
        parts.append("<p>Cells that fail or need review:</p><ol>")
        parts += [
            f'<li id="{anchor}-note-{n.number}">{_h(n.label)}: '
            f'<span class="mark">{_h(MARKS[n.status][0])} {_h(n.status)}</span>: '
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
