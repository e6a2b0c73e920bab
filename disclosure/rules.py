"""The disclosure rules, and their outcome for every cell of a table.

Rules follow ACRO (the SACRO project's reference tool) where it is right:

- threshold: a cell needs at least `threshold` contributors (records, for counts).
  Empty cells fail too: in a frequency table a zero shows that nobody has that
  combination of attributes (ACRO: "zeros are disclosive").
- (n, k) dominance: in a magnitude table the largest `dominance_n` contributors may hold
  at most `dominance_k` of the cell's total. A cell with fewer than n contributors is
  wholly held by them, so it fails as well.
- negative values: dominance is meaningless when values can cancel out, so a magnitude
  cell with a negative value goes to a person ("review"), as in ACRO.
- min and max: each is one contributor's own value, so they always fail.
- regressions: at least `min_dof` residual degrees of freedom (see `disclosure.check`).

Deliberate differences from ACRO: every cell's reason is a sentence a checker reads
(ACRO gives rule codes); dominance shares are computed from exact top values merged
across fragments; the p% rule is not applied (the TRE's policy does not ask for it).

The top-value evidence must hold at least `dominance_n` values: the engine must call
`aggregate.partial(..., top_k=k)` with ``k >= rules.dominance_n``; `apply_rules` refuses
evidence that is too short rather than under-estimate a share.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import polars as pl

from disclosure.errors import DisclosureInputError
from disclosure.validate import (
    EVIDENCE_COLUMNS,
    MAX_TOP_K,
    RESERVED_NAMES,
    check_statistic,
    is_magnitude,
)

__all__ = ["RULE_COLUMNS", "STATUSES", "Rules", "apply_rules"]

#: Outcomes of a cell or an output, from best to worst.
STATUSES = ("pass", "review", "fail")

#: Columns `apply_rules` adds to a finalized table, in order.
RULE_COLUMNS = (
    "dominance_share",
    "fails_threshold",
    "fails_dominance",
    "negative_values",
    "min_max",
    "status",
    "reason",
)
assert set(RULE_COLUMNS) <= set(RESERVED_NAMES), "keys must not be able to clash with these"

MIN_MAX_REASON = "min and max reveal a single contributor's value"


@dataclass(frozen=True)
class Rules:
    """The rule parameters a table or regression is checked against (ACRO's defaults)."""

    threshold: int = 10  # minimum contributors per cell
    dominance_n: int = 2  # (n, k) dominance: the largest n contributors ...
    dominance_k: float = 0.9  # ... may hold at most this share of the cell's total
    min_dof: int = 10  # minimum residual degrees of freedom of a regression

    def __post_init__(self) -> None:
        problems = [
            problem
            for name, value in asdict(self).items()
            if (problem := _check_parameter(name, value)) is not None
        ]
        if problems:
            raise DisclosureInputError(
                "the disclosure rule parameters are not valid",
                reasons=problems,
                fix="correct them in the disclosure policy file",
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Rules:
        """Rules from a policy file's mapping; absent parameters keep their defaults.

        Every problem is reported at once: unknown names, wrong types, out-of-range values.
        """
        if not isinstance(data, Mapping):
            raise DisclosureInputError(
                f"disclosure rules must be a mapping of parameter: value, not a "
                f"{type(data).__name__}",
                fix="write the policy file as lines like 'threshold: 10'",
            )
        known = [f.name for f in fields(cls)]
        problems = []
        for name in data:
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(
                    f"unknown rule parameter {name!r}{hint}; the parameters are {', '.join(known)}"
                )
        problems += [
            problem
            for name, value in data.items()
            if name in known and (problem := _check_parameter(name, value)) is not None
        ]
        if problems:
            raise DisclosureInputError(
                "the disclosure rule parameters are not valid",
                reasons=problems,
                fix="correct them in the disclosure policy file",
            )
        return cls(**{name: data[name] for name in known if name in data})  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """The parameters, as written in a policy file and recorded in a report."""
        return dict(asdict(self))

    def describe(self) -> list[str]:
        """One line per rule, in words a checker reads."""
        return [
            f"threshold {self.threshold}: every cell needs at least {self.threshold} "
            "contributors (empty cells fail)",
            f"dominance ({self.dominance_n}, {self.dominance_k:g}): the largest "
            f"{self.dominance_n} contributors may hold at most {_percent(self.dominance_k)} "
            "of a cell's total",
            "negative values: a magnitude cell with a negative value needs a person's review",
            f"min and max: never released automatically ({MIN_MAX_REASON})",
            f"min_dof {self.min_dof}: a regression needs at least {self.min_dof} residual "
            "degrees of freedom",
        ]


_PARAMETERS: dict[str, tuple[type, str]] = {
    "threshold": (int, "a whole number of at least 1"),
    "dominance_n": (int, f"a whole number from 1 to {MAX_TOP_K}"),
    "dominance_k": (float, "a number greater than 0 and less than 1, e.g. 0.9"),
    "min_dof": (int, "a whole number of at least 1"),
}


def _check_parameter(name: str, value: object) -> str | None:
    """What is wrong with one parameter, or None."""
    kind, allowed = _PARAMETERS[name]
    # bool is an int to Python, never to a policy writer.
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (kind is int and not isinstance(value, int)):
        return f"{name} is {value!r}; it must be {allowed}"
    assert isinstance(value, int | float)
    in_range = {
        "threshold": value >= 1,
        "dominance_n": 1 <= value <= MAX_TOP_K,
        "dominance_k": 0 < value < 1,
        "min_dof": value >= 1,
    }[name]
    return None if in_range else f"{name} is {value!r}; it must be {allowed}"


def apply_rules(cells: pl.DataFrame, statistic: str, rules: Rules) -> pl.DataFrame:
    """The finalized table with each cell's rule outcomes, `status` and `reason` added.

    `status` is "fail" if any rule fails, else "review" if a person must judge the cell,
    else "pass"; `reason` says why in plain words (empty for a pass).
    """
    check_statistic(statistic)
    missing = [c for c in EVIDENCE_COLUMNS if c not in cells.columns]
    if missing:
        raise DisclosureInputError(
            f"the table lacks the evidence column(s) {', '.join(missing)}",
            fix="check the output of aggregate.finalize(), not a table computed another way",
        )
    magnitude = is_magnitude(statistic)
    if magnitude:
        _check_top_evidence(cells, rules)

    n = pl.col("n")
    share = (
        pl.when(pl.col("sum") > 0, ~pl.col("negative"))
        .then(pl.col("top").list.head(rules.dominance_n).list.sum() / pl.col("sum"))
        .otherwise(None)
        if magnitude
        else pl.lit(None, pl.Float64)
    )
    ruled = cells.with_columns(share.cast(pl.Float64).alias("dominance_share")).with_columns(
        (n < rules.threshold).alias("fails_threshold"),
        (pl.col("dominance_share") > rules.dominance_k).fill_null(False).alias("fails_dominance"),
        (pl.col("negative") & pl.lit(magnitude)).alias("negative_values"),
        pl.lit(statistic in ("min", "max")).alias("min_max"),
    )
    failed = pl.col("fails_threshold") | pl.col("fails_dominance") | pl.col("min_max")
    return ruled.with_columns(
        pl.when(failed)
        .then(pl.lit("fail"))
        .when(pl.col("negative_values"))
        .then(pl.lit("review"))
        .otherwise(pl.lit("pass"))
        .alias("status"),
        _reason(statistic, rules).alias("reason"),
    )


def _reason(statistic: str, rules: Rules) -> pl.Expr:
    """Each cell's reasons, joined with '; ' (empty when it passes)."""
    n = pl.col("n")
    noun = "record" if not is_magnitude(statistic) else "contributor"
    threshold = (
        pl.when(~pl.col("fails_threshold"))
        .then(None)
        .when(n == 0)
        .then(
            pl.lit(
                f"empty cell, below the threshold of {rules.threshold}: it shows that nobody "
                "has this combination"
            )
        )
        .when(n == 1)
        .then(pl.lit(f"1 {noun}, below the threshold of {rules.threshold}"))
        .otherwise(pl.format(f"{{}} {noun}s, below the threshold of {rules.threshold}", n))
    )
    holders = (
        "the largest contributor holds"
        if rules.dominance_n == 1
        else f"the largest {rules.dominance_n} contributors hold"
    )
    dominance = pl.when(pl.col("fails_dominance")).then(
        pl.format(
            f"{holders} {{}} of the total, above {_percent(rules.dominance_k)}",
            _percent_above(pl.col("dominance_share"), rules.dominance_k),
        )
    )
    min_max = pl.when(pl.col("min_max")).then(pl.lit(MIN_MAX_REASON))
    negative = pl.when(pl.col("negative_values")).then(
        pl.lit(
            "has negative values, so the dominance rule cannot be applied: a person must review it"
        )
    )
    return pl.concat_str(
        [threshold, dominance, min_max, negative], separator="; ", ignore_nulls=True
    ).fill_null("")


def _percent(share: float) -> str:
    return f"{share * 100:g}%"


def _percent_above(share: pl.Expr, limit: float) -> pl.Expr:
    """`share` as a percentage, with just enough decimals to show it is above `limit`
    (a share of 0.9004 reads "90.04%", never "90%, above 90%")."""
    percent = share * 100
    # Built inside out, so the fewest decimals that show the excess win.
    expr: pl.Expr = pl.lit(f"just over {limit * 100:g}")
    for decimals in (4, 3, 2, 1):
        rounded = percent.round(decimals)
        expr = pl.when(rounded > limit * 100).then(rounded.cast(pl.String)).otherwise(expr)
    whole = percent.round(0)
    expr = pl.when(whole > limit * 100).then(whole.cast(pl.Int64).cast(pl.String)).otherwise(expr)
    return pl.format("{}%", expr)


def _check_top_evidence(cells: pl.DataFrame, rules: Rules) -> None:
    """Refuse top-value evidence too short for the dominance rule: a share computed from
    fewer values than the rule's n would under-state dominance and pass a cell it fails."""
    short = cells.select(
        (pl.col("top").list.len() < pl.min_horizontal(pl.col("n"), pl.lit(rules.dominance_n)))
        .any()
        .fill_null(False)
    ).item()
    if short:
        kept = cells.select(pl.col("top").list.len().max()).item()
        raise DisclosureInputError(
            f"the table keeps at most {kept} top values per cell, but the dominance rule "
            f"needs the largest {rules.dominance_n}",
            fix=f"compute the table with aggregate.partial(..., top_k={rules.dominance_n}) "
            "or more (the platform's to fix if a job step computed it)",
        )
