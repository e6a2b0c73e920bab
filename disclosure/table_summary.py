"""The one-line summary of a checked table, and how many cells each rule caught."""

from __future__ import annotations

import polars as pl

from disclosure.protect import ProtectionOutcome
from disclosure.validate import MARGIN, POSITIONAL

__all__ = ["RULE_FLAGS", "rule_counts", "table_summary"]

#: Each rule's name in counts and reports, and the column that flags it.
RULE_FLAGS = {
    "threshold": "fails_threshold",
    "dominance": "fails_dominance",
    "p_percent": "fails_p_percent",
    "statistic": "fails_statistic",
    "negative_values": "negative_values",
    "same_values": "same_values",
}


def rule_counts(checked: pl.DataFrame) -> dict[str, int]:
    """Inner cells caught by each rule, and totals that fail, in one pass."""
    inner = pl.col(MARGIN) == ""
    totals = checked.select(
        *((pl.col(column) & inner).sum().alias(rule) for rule, column in RULE_FLAGS.items()),
        ((pl.col("status") == "fail") & ~inner).sum().alias("totals"),
    )
    return {name: int(totals.get_column(name)[0] or 0) for name in totals.columns}


def _statistic_label(statistic: str) -> str:
    if statistic in ("min", "max"):
        return "min/max values"
    if statistic in POSITIONAL:
        return f"too few values around the {statistic}"
    return "too few degrees of freedom"


def table_summary(
    checked: pl.DataFrame,
    counts: dict[str, int],
    outcome: ProtectionOutcome,
    rows: list[str],
    columns: list[str],
    value: str | None,
    statistic: str,
    quantile: float | None,
) -> str:
    """One line: the table's shape and statistic, what fails or needs review, and what
    protection did."""
    inner = checked.filter(pl.col(MARGIN) == "")
    if columns:
        shape = f"{inner.select(rows).unique().height}x{inner.select(columns).unique().height}"
    else:
        shape = f"of {inner.height} cells,"
    if statistic == "count":
        what = "counts" if value is None else f"counts of records with a value of {value}"
    elif statistic == "quantile":
        what = f"quantile {quantile:g} of {value}"
    else:
        what = f"{statistic} of {value}"
    head = f"table {shape} {what}"
    total = inner.height
    if total == 0:
        return f"{head}: no cells (no rows in the data); a person must confirm that is expected"
    statuses = inner.get_column("status")
    failing, reviewing = int((statuses == "fail").sum()), int((statuses == "review").sum())
    labels = {
        "threshold": "below the threshold",
        "dominance": "dominated",
        "p_percent": "failing the p% rule",
        "statistic": _statistic_label(statistic),
    }
    parts = []
    if failing:
        alike = int((inner.get_column("same_values") & (statuses == "fail")).sum())
        details = [f"{counts[r]} {labels[r]}" for r in labels if counts[r]]
        details += [f"{alike} with every contributor alike"] if alike else []
        detail = ", ".join(details)
        parts.append(f"{failing} of {total} cells fail ({detail})")
    if counts.get("totals"):
        parts.append(f"{counts['totals']} total{'s' * (counts['totals'] != 1)} fail")
    if reviewing:
        alike = int((inner.get_column("same_values") & (statuses == "review")).sum())
        reasons = ["negative values"] if counts["negative_values"] else []
        reasons += ["every contributor alike"] if alike else []
        unvalued = int((inner.get_column("no_value") & (statuses == "review")).sum())
        reasons += [f"{unvalued} with no value"] if unvalued else []
        parts.append(f"{reviewing} of {total} cells need review ({', '.join(reasons)})")
    text = f"{head}: {'; '.join(parts) or f'all {total} cells pass'}"
    return text + _protection_phrase(outcome)


def _protection_phrase(outcome: ProtectionOutcome) -> str:
    """What protection did, as the end of the summary ("" when nothing)."""
    parts = []
    if outcome.primary:
        redacted = f", {outcome.redacted} of them small counts" if outcome.redacted else ""
        parts.append(f"{outcome.primary} suppressed{redacted}")
    if outcome.secondary:
        parts.append(f"{outcome.secondary} more so they cannot be worked out from the totals")
    if outcome.cell_key:
        parts.append(
            f"{outcome.perturbed} cell(s) and total(s) published with noise by the cell key method"
        )
    if outcome.rounded_to:
        parts.append(f"counts rounded to the nearest {outcome.rounded_to}")
    if not parts:
        return ""
    text = "; protected: " + ", ".join(parts)
    if outcome.narrow:
        text += (
            f" (protection incomplete: {outcome.narrow} suppressed cell(s) can be narrowed "
            "below the protection level: it cannot be released)"
        )
    elif not outcome.complete and outcome.audit.startswith("not audited"):
        text += (
            " (protection incomplete: the protection level could not be checked, "
            f"{outcome.audit}: it cannot be released)"
        )
    elif not outcome.complete:
        text += " (protection incomplete: it cannot be released)"
    elif outcome.cells and not outcome.published_cells:
        text += " (every cell is suppressed: nothing is left to release)"
    return text
