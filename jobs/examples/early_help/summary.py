"""Example researcher code for a python step (see summary.yaml).

The function gets a context: `ctx.dataset(name)` gives an approved dataset as a polars
LazyFrame; `ctx.table`, `ctx.regression` and `ctx.file` hand back outputs, which go
through disclosure control and two output checkers before anyone sees them.
"""

import polars as pl


def summarise(ctx):
    referrals = ctx.dataset("early_help")
    ctx.table(
        "referrals_by_source",
        referrals,
        rows=["referral_source"],
        columns=["outcome"],
        description="Early help referrals by who referred and the outcome.",
    )
    by_need = (
        referrals.group_by("primary_need")
        .agg(pl.len().alias("referrals"), pl.col("days_open").median().alias("median_days"))
        .sort("primary_need")
        .collect()
    )
    lines = ["Median days open by primary need (needs with at least 10 referrals):", ""]
    for need, count, days in by_need.iter_rows():
        if count >= 10:
            lines.append(f"- {need}: {days:.0f} days")
    ctx.file(
        "median_days_note",
        "median_days.md",
        "\n".join(lines) + "\n",
        description="Median days open per need; a checker reads it before release.",
    )
