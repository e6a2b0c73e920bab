"""What leaves the TRE for a table: the protected table, and a summary for the researcher.

`released_table` holds only what protection publishes: the keys, the value (blank where
suppressed, rounded where asked), the contributor count of a magnitude table, a
`suppressed` flag, and the totals when they are published (their keys read "Total").
No evidence (shares, top values, reasons) is in it.

`researcher_summary` tells the researcher what was done and why, in the words of the
rules, without any evidence value: which cells are suppressed (never which were small
and which protect them, since that would narrow the suppressed values down), how many
for each reason, and whether counts are rounded.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from disclosure.check import Result, TableResult
from disclosure.table_summary import RULE_FLAGS
from disclosure.validate import MARGIN

__all__ = ["TOTAL_LABEL", "released_table", "researcher_summary"]

TOTAL_LABEL = "Total"
#: Why cells were suppressed, by rule, as a count: "3 with fewer contributors ...".
_REASONS = {
    "threshold": "with fewer contributors than the threshold",
    "dominance": "dominated by their largest contributors",
    "p_percent": "whose largest contribution could be estimated too closely (p% rule)",
    "statistic": "where the statistic itself would disclose a value",
    "same_values": "where every contributor has the same value",
}


def released_table(result: TableResult) -> pl.DataFrame:
    """The table as it is released: keys as text ("Total" in a total's summed keys), the
    value named after the statistic, `n` for magnitude tables, and `suppressed`."""
    keys = result.keys
    cells = result.cells
    if not result.protection_policy.totals:
        cells = cells.filter(pl.col(MARGIN) == "")
    label = _total_label(cells, keys)
    margin = pl.col(MARGIN)
    summed = {
        key: margin.is_in(["column", "total"])
        if key in result.rows
        else margin.is_in(["row", "total"])
        for key in keys
    }
    statistic = result.statistic
    columns = [
        pl.when(summed[key]).then(pl.lit(label)).otherwise(pl.col(key).cast(pl.String)).alias(key)
        for key in keys
    ]
    # Counts are whole numbers: publish them as such (a suppressed cell stays empty).
    value = pl.col("published")
    columns.append(
        (value.round(0).cast(pl.Int64) if statistic == "count" else value).alias(statistic)
    )
    if statistic != "count":
        columns.append(pl.col("published_n").round(0).cast(pl.Int64).alias("n"))
    columns.append((pl.col("suppressed") != "").alias("suppressed"))
    return cells.select(columns)


def _total_label(cells: pl.DataFrame, keys: list[str]) -> str:
    """ "Total", unless a key has a real level of that name (then "(Total)")."""
    clash = cells.filter(pl.col(MARGIN) == "").select(
        pl.any_horizontal(pl.col(k).cast(pl.String) == TOTAL_LABEL for k in keys).any()
    )
    return f"({TOTAL_LABEL})" if clash.item() else TOTAL_LABEL


def researcher_summary(result: Result) -> str:
    """What the researcher is told about one output (Markdown, no evidence values)."""
    lines = [f"# Disclosure control: {result.name}", ""]
    if not isinstance(result, TableResult):
        lines.append("This output is released as it is, once two output checkers have approved it.")
        return "\n".join(lines) + "\n"
    lines += ["Rules applied:", ""]
    lines += [f"- {line}" for line in result.rules.describe()]
    lines += ["", "Protection:", ""]
    lines += [f"- {line}" for line in result.protection_policy.describe()]
    lines += ["", "What was done to this table:", ""]
    lines += _what_was_done(result)
    hidden = result.cells.filter(pl.col("suppressed") != "")
    if hidden.height:
        lines += ["", "Suppressed cells (blank in the table, `suppressed` true):", ""]
        lines += [f"- {label}" for label in _labels(result, hidden)]
    return "\n".join(lines) + "\n"


def _what_was_done(result: TableResult) -> list[str]:
    outcome = result.protection
    cells = result.cells
    if outcome is None or (not outcome.suppressed and not outcome.rounded_to):
        return ["- nothing: every cell is released as computed"]
    lines = []
    primary = cells.filter(pl.col("suppressed") == "primary")
    if primary.height:
        caught = [
            f"{int(primary.get_column(RULE_FLAGS[rule]).sum())} {reason}"
            for rule, reason in _REASONS.items()
            if int(primary.get_column(RULE_FLAGS[rule]).sum())
        ]
        if outcome.redacted:
            limit = result.protection_policy.redact_at_or_below
            caught.append(f"{outcome.redacted} counts at or below {limit}")
        lines.append(
            f"- {primary.height} cell(s) or total(s) suppressed because they fail a rule "
            f"({'; '.join(caught)}; a cell can fail several)"
        )
    if outcome.secondary:
        lines.append(
            f"- {outcome.secondary} more suppressed so that those cannot be worked out "
            "from the totals"
        )
    if outcome.rounded_to:
        lines.append(
            f"- counts rounded to the nearest {outcome.rounded_to}; totals are the sums of "
            "the published cells"
        )
    return lines


def _labels(result: TableResult, cells: pl.DataFrame) -> list[str]:
    """Each suppressed cell named by its keys ("Total" for a summed key)."""
    named = released_table(replace(result, cells=cells))
    keys = result.keys
    rendered = named.select(
        pl.concat_str(
            [pl.lit(f"{key} ") + pl.col(key).fill_null("(missing)") for key in keys],
            separator=", ",
        ).alias("label")
    )
    return rendered.get_column("label").to_list()
