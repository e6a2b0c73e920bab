"""Checks of the outputs that are not tables: regressions and free-form files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import polars as pl

from disclosure.errors import DisclosureInputError
from disclosure.rules import Rules

__all__ = [
    "COEFFICIENT_COLUMNS",
    "FileResult",
    "RegressionResult",
    "check_file",
    "check_regression",
    "format_size",
]

COEFFICIENT_COLUMNS = ("term", "estimate", "std_error", "statistic", "p_value")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DEFAULT_DOF = Rules().min_dof


@dataclass
class RegressionResult:
    """A checked regression: enough residual degrees of freedom, and no small group
    behind a categorical predictor's level or a value of a predictor with few values."""

    kind: ClassVar[str] = "regression"
    name: str
    model: str
    n_obs: int
    df_resid: int
    coefficients: pl.DataFrame  # term, estimate, std_error, statistic, p_value
    status: str
    summary: str
    reasons: list[str] = field(default_factory=list)
    min_dof: int = _DEFAULT_DOF
    level_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    value_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    few_values: int = Rules().few_values
    check_status: str = ""  # a regression is released as it is: the same as `status`
    advisory: str = ""  # why its evidence is not tre's own (disclosure.advisory), if so
    provenance: str = ""  # who computed its evidence, when a checker should be told


@dataclass
class FileResult:
    """A free-form file: never checked automatically, always reviewed by a person."""

    kind: ClassVar[str] = "file"
    name: str
    filename: str
    size: int
    sha256: str
    description: str = ""
    status: str = "review"
    summary: str = ""
    check_status: str = "review"


def check_regression(
    *,
    name: str,
    model: str,
    n_obs: int,
    df_resid: int,
    coefficients: pl.DataFrame,
    rules: Rules,
    level_counts: Mapping[str, Mapping[str, int]] | None = None,
    value_counts: Mapping[str, Mapping[str, int]] | None = None,
) -> RegressionResult:
    """Check a fitted regression. It fails with fewer than `rules.min_dof` residual
    degrees of freedom (a saturated model can give back individual records), and when a
    level of a categorical predictor has fewer than `rules.threshold` observations (its
    coefficient is then the mean outcome of a small group, against the baseline).

    `value_counts` are the observations at each value of numeric predictors; one with at
    most `rules.few_values` distinct values is checked like a categorical one (a 0/1
    indicator marking one person gives that person's outcome: intercept plus
    coefficient). Predictors with more values are not affected."""
    problems = _regression_problems(n_obs, df_resid, coefficients)
    if problems:
        raise DisclosureInputError(
            f"regression {name!r} cannot be checked",
            reasons=problems,
            fix="pass the fitted model's observation count, residual degrees of freedom and "
            f"coefficients ({', '.join(COEFFICIENT_COLUMNS)})",
        )
    counts, values = _counts(level_counts), _counts(value_counts)
    reasons = []
    if df_resid < rules.min_dof:
        reasons.append(
            f"{df_resid} residual degrees of freedom, below the minimum of {rules.min_dof}"
        )
    small = [
        (predictor, level, count)
        for predictor, tally in sorted(counts.items())
        for level, count in sorted(tally.items())
        if count < rules.threshold
    ]
    reasons += [
        f"level {level!r} of {predictor} has {count} observation{'s' * (count != 1)}, below "
        f"the threshold of {rules.threshold}: its coefficient describes a small group"
        for predictor, level, count in small
    ]
    rare = _rare_values(values, rules)
    reasons += [
        f"value {value} of {predictor} has {count} observation{'s' * (count != 1)}, below "
        f"the threshold of {rules.threshold}: {predictor} has only {distinct} distinct "
        "values, so its coefficient describes a small group, as a categorical level's would"
        for predictor, value, count, distinct in rare
    ]
    verdict = "below" if df_resid < rules.min_dof else "at least"
    terms = coefficients.height
    summary = (
        f"regression {model} ({n_obs} observations, {terms} term{'s' * (terms != 1)}): "
        f"{df_resid} residual degrees of freedom, {verdict} the minimum of {rules.min_dof}"
    )
    if small:
        summary += f"; {len(small)} categorical level{'s' * (len(small) != 1)} below the threshold"
    if rare:
        summary += (
            f"; {len(rare)} value{'s' * (len(rare) != 1)} of predictors with few values below "
            "the threshold"
        )
    status = "fail" if reasons else "pass"
    return RegressionResult(
        name=name,
        model=model,
        n_obs=n_obs,
        df_resid=df_resid,
        coefficients=coefficients.select(COEFFICIENT_COLUMNS),
        status=status,
        summary=summary,
        reasons=reasons,
        min_dof=rules.min_dof,
        level_counts=counts,
        value_counts=values,
        few_values=rules.few_values,
        check_status=status,
    )


def _counts(given: Mapping[str, Mapping[str, int]] | None) -> dict[str, dict[str, int]]:
    return {
        str(predictor): {str(level): int(count) for level, count in tally.items()}
        for predictor, tally in (given or {}).items()
    }


def _rare_values(
    values: dict[str, dict[str, int]], rules: Rules
) -> list[tuple[str, str, int, int]]:
    """(predictor, value, count, distinct values) of each value below the threshold, of
    predictors with at most `rules.few_values` distinct values."""
    return [
        (predictor, value, count, len(tally))
        for predictor, tally in sorted(values.items())
        if len(tally) <= rules.few_values
        for value, count in sorted(tally.items())
        if count < rules.threshold
    ]


def _regression_problems(n_obs: int, df_resid: int, coefficients: pl.DataFrame) -> list[str]:
    problems = [
        f"{what} is {number!r}; it must be a whole number of at least 0"
        for what, number in (("n_obs", n_obs), ("df_resid", df_resid))
        if isinstance(number, bool) or not isinstance(number, int) or number < 0
    ]
    if not problems and df_resid > n_obs:
        problems.append(f"df_resid {df_resid} is more than n_obs {n_obs}")
    absent = [c for c in COEFFICIENT_COLUMNS if c not in coefficients.columns]
    if absent:
        problems.append(f"the coefficients lack column(s) {', '.join(absent)}")
    return problems


def check_file(
    *, name: str, filename: str, size: int, sha256: str, description: str = ""
) -> FileResult:
    """Record a free-form file (a figure, a text): always "review", since no rule can
    tell what a file reveals; a person must look at it."""
    problems = []
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        problems.append(f"size is {size!r}; it must be a number of bytes, at least 0")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        problems.append(f"sha256 is {sha256!r}; it must be 64 lower-case hex digits")
    if problems:
        raise DisclosureInputError(
            f"file output {name!r} cannot be recorded",
            reasons=problems,
            fix="pass the file's size in bytes and hashlib.sha256(content).hexdigest()",
        )
    return FileResult(
        name=name,
        filename=filename,
        size=size,
        sha256=sha256,
        description=description,
        status="review",
        summary=f"file {filename} ({format_size(size)}): a person must review any free-form file",
    )


def format_size(size: int) -> str:
    """Bytes as a person reads them: 512 B, 12.3 KiB, 4.0 MiB."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
