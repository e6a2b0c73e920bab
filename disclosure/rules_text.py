"""The words of the rules: each cell's reason, built as one polars expression.

Reasons are for output checkers (they quote the evidence: counts, shares). What a
researcher sees is written elsewhere (`disclosure.release.researcher_summary`) and
quotes no evidence.
"""

from __future__ import annotations

from typing import Protocol

import polars as pl

from disclosure.validate import is_magnitude


class RuleSettings(Protocol):
    """The rule settings the words quote (disclosure.rules.Rules has them; named here
    so this module needs nothing of the one that uses it)."""

    @property
    def threshold(self) -> int: ...

    @property
    def dominance_n(self) -> int: ...

    @property
    def dominance_k(self) -> float: ...

    @property
    def p_ratio(self) -> float: ...

    @property
    def quantile_side(self) -> int: ...

    @property
    def min_dof(self) -> int: ...


__all__ = ["MIN_MAX_REASON", "percent", "reason_expression"]

MIN_MAX_REASON = "min and max reveal a single contributor's value"
_STATISTIC_NAMES = {"median": "the median", "quantile": "the quantile", "mode": "the mode"}


def percent(share: float) -> str:
    """A share as a percentage, e.g. 0.9 -> "90%"."""
    return f"{share * 100:g}%"


def reason_expression(statistic: str, rules: RuleSettings) -> pl.Expr:
    """Each cell's reasons, joined with '; ' (empty when it passes)."""
    parts = [
        _threshold(statistic, rules),
        _dominance(rules),
        _p_percent(rules),
        _statistic(statistic, rules),
        pl.when(pl.col("negative_values")).then(
            pl.lit(
                "has negative values, so the dominance rules cannot be applied: "
                "a person must review it"
            )
        ),
        pl.when(pl.col("same_values")).then(
            pl.lit("every contributor has the same value, so the cell shows each one's value")
        ),
        _no_value(),
    ]
    return pl.concat_str(parts, separator="; ", ignore_nulls=True).fill_null("")


def _threshold(statistic: str, rules: RuleSettings) -> pl.Expr:
    n = pl.col("n")
    if is_magnitude(statistic):
        noun: pl.Expr = pl.lit("contributor")
    else:
        # A count table counts records (with a value, if it counts a value column); with a
        # unit-id column its contributors are units.
        counted = pl.col("records") - pl.col("missing")
        noun = pl.when(n == counted).then(pl.lit("record")).otherwise(pl.lit("person"))
    plural = pl.when(noun == "person").then(pl.lit("people")).otherwise(noun + "s")
    return (
        pl.when(~pl.col("fails_threshold"))
        .then(None)
        .when((n == 0) & (pl.col("records") > 0))
        .then(
            pl.format(
                f"no contributors, below the threshold of {rules.threshold}: none of its {{}} "
                "has a value",
                _records(pl.col("records")),
            )
        )
        .when(n == 0)
        .then(
            pl.lit(
                f"empty cell, below the threshold of {rules.threshold}: it shows that nobody "
                "has this combination"
            )
        )
        .when(n == 1)
        .then(pl.format(f"1 {{}}, below the threshold of {rules.threshold}", noun))
        .otherwise(pl.format(f"{{}} {{}}, below the threshold of {rules.threshold}", n, plural))
    )


def _records(count: pl.Expr) -> pl.Expr:
    return pl.when(count == 1).then(pl.lit("1 record")).otherwise(pl.format("{} records", count))


def _no_value() -> pl.Expr:
    """Why a cell with records has no value, unless the threshold already said so."""
    records = pl.col("records")
    return pl.when((pl.col("n") == 0) & (records > 0) & ~pl.col("fails_threshold")).then(
        pl.format(
            "no value: none of its {} has one, so the cell shows that nobody in it has a "
            "value; a person must review it",
            _records(records),
        )
    )


def _dominance(rules: RuleSettings) -> pl.Expr:
    holders = (
        "the largest contributor holds"
        if rules.dominance_n == 1
        else f"the largest {rules.dominance_n} contributors hold"
    )
    return pl.when(pl.col("fails_dominance")).then(
        pl.format(
            f"{holders} {{}} of the total, above {percent(rules.dominance_k)}",
            _percent_beyond(pl.col("dominance_share"), rules.dominance_k, above=True),
        )
    )


def _p_percent(rules: RuleSettings) -> pl.Expr:
    ratio = pl.col("p_ratio")
    return (
        pl.when(~pl.col("fails_p_percent"))
        .then(None)
        .when(ratio <= 0)
        .then(
            pl.lit(
                "the second largest contributor could work out the largest contribution "
                "exactly (p% rule)"
            )
        )
        .otherwise(
            pl.format(
                "the second largest contributor could estimate the largest contribution to "
                f"within {{}}, closer than {percent(rules.p_ratio)} (p% rule)",
                _percent_beyond(ratio, rules.p_ratio, above=False),
            )
        )
    )


def _statistic(statistic: str, rules: RuleSettings) -> pl.Expr:
    failing = pl.col("fails_statistic")
    if statistic in ("min", "max"):
        return pl.when(failing).then(pl.lit(MIN_MAX_REASON))
    if statistic in _STATISTIC_NAMES:
        name = _STATISTIC_NAMES[statistic]
        side = rules.quantile_side
        return (
            pl.when(~failing)
            .then(None)
            .when(pl.col("below").is_null() | pl.col("above").is_null())
            .then(pl.lit(f"no evidence of how many values lie around {name}, so it cannot pass"))
            .otherwise(
                pl.format(
                    f"{name} has {{}} values at or below it and {{}} at or above it; it needs "
                    f"at least {side} on each side",
                    pl.col("below"),
                    pl.col("above"),
                )
            )
        )
    if statistic == "std":
        return pl.when(failing).then(
            pl.format(
                "a standard deviation of {} contributors has {} degrees of freedom, below the "
                f"minimum of {rules.min_dof}",
                pl.col("n"),
                pl.col("n") - 1,
            )
        )
    return pl.lit(None, pl.String)


def _percent_beyond(share: pl.Expr, limit: float, *, above: bool) -> pl.Expr:
    """`share` as a percentage, with just enough decimals to show it is beyond `limit`
    (a share of 0.9004 reads "90.04%", never "90%, above 90%")."""
    percent_value = share * 100
    bound = limit * 100

    def beyond(value: pl.Expr) -> pl.Expr:
        return value > bound if above else value < bound

    # Built inside out, so the fewest decimals that show the difference win.
    expr: pl.Expr = pl.lit(f"just {'over' if above else 'under'} {bound:g}")
    for decimals in (4, 3, 2, 1):
        rounded = percent_value.round(decimals)
        expr = pl.when(beyond(rounded)).then(rounded.cast(pl.String)).otherwise(expr)
    whole = percent_value.round(0)
    expr = pl.when(beyond(whole)).then(whole.cast(pl.Int64).cast(pl.String)).otherwise(expr)
    if not above and bound > 1:  # "within 0%" reads as exact; it is not
        expr = pl.when(percent_value < 0.5).then(pl.lit("under 1")).otherwise(expr)
    return pl.format("{}%", expr)
