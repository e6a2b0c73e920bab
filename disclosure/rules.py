"""The disclosure rules, and their outcome for every cell of a table (and its totals).

Each rule adds a boolean column; a cell's `status` is "fail" if any fail rule holds,
else "review" if a person must judge it, else "pass", and `reason` says why in words a
checker reads. Every expression runs over the whole table at once (no per-cell loop).

    threshold        fewer than `threshold` contributors (empty cells too, if
                     `zeros_disclosive`)                                       fail
    dominance        the largest n contributors hold more than k of the total   fail
    p%               the rest of the cell is less than p of its largest value   fail
    statistic        min/max always; a median, quantile or mode needs
                     `quantile_side` values at or below and at or above it;
                     a standard deviation needs `min_dof` degrees of freedom    fail
    negative values  dominance and p% are not valid on them                     review
    same values      every contributor has the same value (n >= 2)    `same_value`
    no value         records, but none has a value: the statistic is missing,
                     which shows that nobody in the cell has one              review

Two flags describe a cell without being rules of their own: `empty_cell` (no records
at all: a zero of a frequency table, or an empty combination) and `no_value` (the
cell's value is missing: no contributor has a value, or the statistic is undefined for
so few). They say why a cell reads 0 or "–" whatever the threshold decided.

Contributors are records with a value, or units with a value when the table has a
unit-id column (`disclosure.aggregate`). `docs/disclosure.md` gives each rule's source
and every deliberate difference from ACRO.

The top-value evidence must hold at least `dominance_n` values (and 2 for the p% rule):
the engine calls `aggregate.partial(..., top_k=k)` with ``k >= max(2, dominance_n)``;
`apply_rules` refuses evidence that is too short rather than under-estimate a share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import polars as pl

from disclosure.errors import DisclosureInputError
from disclosure.parameters import parameter_problem, problems
from disclosure.policy_parameters import PROTECTION_PARAMETERS, RULE_PARAMETERS
from disclosure.rules_text import MIN_MAX_REASON, percent, reason_expression
from disclosure.validate import (
    POSITIONAL,
    RULE_COLUMNS,
    check_statistic,
    is_magnitude,
)

__all__ = [
    "MIN_MAX_REASON",
    "RULE_COLUMNS",
    "RULE_PARAMETERS",
    "STATUSES",
    "Rules",
    "apply_rules",
    "complete_evidence",
]

#: Outcomes of a cell or an output, from best to worst.
STATUSES = ("pass", "review", "fail")


@dataclass(frozen=True)
class Rules:
    """The rule parameters a table or regression is checked against (ACRO's defaults
    where ACRO has the rule)."""

    threshold: int = 10  # minimum contributors per cell
    dominance_n: int = 2  # (n, k) dominance: the largest n contributors ...
    dominance_k: float = 0.9  # ... may hold at most this share of the cell's total
    p_ratio: float = 0.1  # p%: the rest must be at least this share of the largest
    min_dof: int = 10  # minimum residual degrees of freedom (regressions, std)
    zeros_disclosive: bool = True  # empty cells fail the threshold (class disclosure)
    same_value: str = "review"  # status of a cell whose contributors all share a value
    quantile_side: int = 5  # values needed at or below and at or above a median/quantile
    few_values: int = 5  # a numeric regression predictor with at most this many values is
    # checked like a categorical one (every value needs `threshold` observations)

    def __post_init__(self) -> None:
        found = [
            problem
            for name, value in asdict(self).items()
            if (problem := parameter_problem(name, RULE_PARAMETERS[name], value)) is not None
        ]
        if found:
            raise DisclosureInputError(
                "the disclosure rule parameters are not valid",
                reasons=found,
                fix="correct them in the disclosure policy file",
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Rules:
        """Rules from a policy file's mapping; absent parameters keep their defaults.

        Every problem is reported at once: unknown names, wrong types, out-of-range values.
        Protection parameters (`disclosure.protection`) are left to `Protection`.
        """

        if not isinstance(data, Mapping):
            raise DisclosureInputError(
                f"disclosure rules must be a mapping of parameter: value, not a "
                f"{type(data).__name__}",
                fix="write the policy file as lines like 'threshold: 10'",
            )
        found = problems(data, RULE_PARAMETERS, PROTECTION_PARAMETERS)
        if found:
            raise DisclosureInputError(
                "the disclosure rule parameters are not valid",
                reasons=found,
                fix="correct them in the disclosure policy file",
            )
        known = [f.name for f in fields(cls)]
        values = {name: data[name] for name in known if name in data}
        if isinstance(values.get("dominance_k"), int):  # 1 is refused; 0.9 written as 9/10
            values["dominance_k"] = float(values["dominance_k"])  # type: ignore[arg-type]
        if isinstance(values.get("p_ratio"), int):
            values["p_ratio"] = float(values["p_ratio"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """The parameters, as written in a policy file and recorded in a report."""
        return dict(asdict(self))

    @property
    def top_k(self) -> int:
        """How many of a cell's largest contributions the rules need as evidence."""
        return max(2, self.dominance_n)

    def describe(self) -> list[str]:
        """One line per rule, in words a checker reads."""
        zeros = (
            "empty cells fail"
            if self.zeros_disclosive
            else "empty cells pass; a cell whose records all lack a value is reviewed"
        )
        return [
            f"threshold {self.threshold}: every cell needs at least {self.threshold} "
            f"contributors ({zeros})",
            f"dominance ({self.dominance_n}, {self.dominance_k:g}): the largest "
            f"{self.dominance_n} contributors may hold at most {percent(self.dominance_k)} "
            "of a cell's total",
            f"p% rule ({percent(self.p_ratio)}): the rest of a cell, beyond its two largest "
            f"contributors, must be at least {percent(self.p_ratio)} of the largest one"
            if self.p_ratio
            else "p% rule: off",
            "negative values: a magnitude cell with a negative value needs a person's review",
            f"same value: a cell whose contributors all have the same value is "
            f"{'failed' if self.same_value == 'fail' else 'reviewed'}",
            f"min and max: never released automatically ({MIN_MAX_REASON})",
            f"median, quantiles and mode: at least {self.quantile_side} values at or below "
            "and at or above them",
            f"min_dof {self.min_dof}: a regression (and a standard deviation) needs at "
            f"least {self.min_dof} residual degrees of freedom; a categorical predictor "
            f"needs at least {self.threshold} observations at every level",
            f"few_values {self.few_values}: a numeric predictor of a regression with at most "
            f"{self.few_values} distinct values (a 0/1 indicator, say) needs at least "
            f"{self.threshold} observations at every value, as a categorical one does",
        ]


def complete_evidence(cells: pl.DataFrame, statistic: str) -> pl.DataFrame:
    """`cells` with the optional evidence columns filled in where a caller left them out.

    Required: `value` and `n`, and for magnitude tables `sum`, `top` and `negative`.
    Optional: `records` (n), `missing` (0), `same_value` (false), and `below` / `above`
    (unknown: a median, quantile or mode without them fails rather than passes).
    """
    check_statistic(statistic)
    required = ["value", "n", *(["sum", "top", "negative"] if is_magnitude(statistic) else [])]
    missing = [c for c in required if c not in cells.columns]
    if missing:
        raise DisclosureInputError(
            f"the table lacks the evidence column(s) {', '.join(missing)}",
            fix="check the output of aggregate.finalize(), or supply per-cell counts (n), "
            "totals (sum), the largest contributions (top) and whether any value is negative",
        )
    defaults = {
        "records": pl.col("n"),
        "sum": pl.lit(None, pl.Float64),
        "top": pl.lit([], pl.List(pl.Float64)),
        "negative": pl.lit(False),
        "missing": pl.lit(0, pl.Int64),
        "same_value": pl.lit(False),
        "below": pl.lit(None, pl.Int64),
        "above": pl.lit(None, pl.Int64),
    }
    absent = [expr.alias(name) for name, expr in defaults.items() if name not in cells.columns]
    return cells.with_columns(absent) if absent else cells


def apply_rules(cells: pl.DataFrame, statistic: str, rules: Rules) -> pl.DataFrame:
    """The table with each cell's rule outcomes, `status` and `reason` added.

    `status` is "fail" if any rule fails, else "review" if a person must judge the cell,
    else "pass"; `reason` says why in plain words (empty for a pass). Totals (rows with a
    `margin`) are checked like cells.
    """
    cells = complete_evidence(cells, statistic)
    magnitude = is_magnitude(statistic)
    if magnitude:
        _check_top_evidence(cells, rules)
    n, total, top = pl.col("n"), pl.col("sum"), pl.col("top")
    valid = ~pl.col("negative")
    largest = top.list.get(0, null_on_oob=True)
    second = top.list.get(1, null_on_oob=True).fill_null(0.0)
    share = pl.when((total > 0) & valid).then(top.list.head(rules.dominance_n).list.sum() / total)
    p_ratio = pl.when((largest > 0) & valid).then((total - largest - second) / largest)
    ruled = cells.with_columns(
        (share if magnitude else pl.lit(None)).cast(pl.Float64).alias("dominance_share"),
        (p_ratio if magnitude else pl.lit(None)).cast(pl.Float64).alias("p_ratio"),
    ).with_columns(
        ((n < rules.threshold) & ((n > 0) | pl.lit(rules.zeros_disclosive))).alias(
            "fails_threshold"
        ),
        (pl.col("dominance_share") > rules.dominance_k).fill_null(False).alias("fails_dominance"),
        (pl.col("p_ratio") < rules.p_ratio).fill_null(False).alias("fails_p_percent"),
        _fails_statistic(statistic, rules).alias("fails_statistic"),
        (pl.col("negative") & pl.lit(magnitude)).alias("negative_values"),
        (pl.col("same_value") & (n >= 2) & pl.lit(magnitude and statistic not in ("min", "max")))
        .fill_null(False)
        .alias("same_values"),
        (pl.col("records") == 0).fill_null(False).alias("empty_cell"),
        _missing_value(cells.schema["value"]).alias("no_value"),
    )
    failed = (
        pl.col("fails_threshold")
        | pl.col("fails_dominance")
        | pl.col("fails_p_percent")
        | pl.col("fails_statistic")
        | (pl.col("same_values") & pl.lit(rules.same_value == "fail"))
    )
    return ruled.with_columns(
        pl.when(failed)
        .then(pl.lit("fail"))
        .when(pl.col("negative_values") | pl.col("same_values") | _unvalued())
        .then(pl.lit("review"))
        .otherwise(pl.lit("pass"))
        .alias("status"),
        reason_expression(statistic, rules).alias("reason"),
    )


def _missing_value(dtype: pl.DataType) -> pl.Expr:
    """Whether a cell's value is missing: null, or NaN for a float value."""
    value = pl.col("value")
    return (
        (value.is_null() | value.is_nan()).fill_null(True) if dtype.is_float() else value.is_null()
    )


def _unvalued() -> pl.Expr:
    """A cell with records but no contributor: every record lacks a value, so the table
    says nobody in the cell has one (for a checker to judge, when no rule fails it)."""
    return (pl.col("records") > 0) & (pl.col("n") == 0)


def _fails_statistic(statistic: str, rules: Rules) -> pl.Expr:
    """The statistic's own rule: min/max never pass; positional statistics need values on
    both sides; a standard deviation needs degrees of freedom."""
    n = pl.col("n")
    if statistic in ("min", "max"):
        return pl.lit(True)
    if statistic in POSITIONAL:
        short = (pl.col("below") < rules.quantile_side) | (pl.col("above") < rules.quantile_side)
        # Without the evidence a positional value cannot be shown safe, so it fails.
        return (n > 0) & short.fill_null(True)
    if statistic == "std":
        return (n > 0) & (n - 1 < rules.min_dof)
    return pl.lit(False)


def _check_top_evidence(cells: pl.DataFrame, rules: Rules) -> None:
    """Refuse top-value evidence too short for the dominance and p% rules: a share computed
    from fewer values than the rule's n would under-state dominance and pass a cell it fails."""
    short = cells.select(
        (pl.col("top").list.len() < pl.min_horizontal(pl.col("n"), pl.lit(rules.top_k)))
        .any()
        .fill_null(False)
    ).item()
    if short:
        kept = cells.select(pl.col("top").list.len().max()).item()
        raise DisclosureInputError(
            f"the table keeps at most {kept} top values per cell, but the dominance and p% "
            f"rules need the largest {rules.top_k}",
            fix=f"compute the table with aggregate.partial(..., top_k={rules.top_k}) "
            "or more (the platform's to fix if a job step computed it)",
        )
