"""Checks of what callers pass to the disclosure engine, and the names it reserves.

Each check raises `DisclosureInputError` naming the bad value, what is allowed and the fix;
where several things are wrong, it lists them all at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from disclosure.errors import DisclosureInputError

__all__ = [
    "CELL_KEY",
    "EVIDENCE_COLUMNS",
    "MARGIN",
    "MARGINS",
    "MAX_FEW_VALUES",
    "MAX_TOP_K",
    "POSITIONAL",
    "PROTECTION_COLUMNS",
    "RESERVED_NAMES",
    "RULE_COLUMNS",
    "STATISTICS",
    "check_columns",
    "check_grid",
    "check_keys",
    "check_partial",
    "check_quantile",
    "check_record_key",
    "check_statistic",
    "check_top_k",
    "check_unit",
    "is_magnitude",
]

#: Every statistic a table can show; all but "count" make a magnitude table.
STATISTICS = ("count", "sum", "mean", "median", "std", "min", "max", "quantile", "mode")

#: Statistics whose value is one contributor's value or sits among a few of them:
#: "enough contributors around it" (`Rules.quantile_side`) applies to these.
POSITIONAL = ("median", "quantile", "mode")

#: Columns `finalize` adds after the keys, in order. The first seven are the evidence
#: every table has; `same_value`, `below` and `above` feed the rules on class and
#: positional disclosure (see `disclosure.rules`).
#: The evidence column of a table given record keys: its cell key, in [0, 1).
CELL_KEY = "cell_key"
EVIDENCE_COLUMNS = (
    "value",
    "n",
    "records",
    "sum",
    "top",
    "negative",
    "missing",
    "same_value",
    "below",
    "above",
)

#: The margin column of a table with totals: "" for an inner cell, "row" for the total
#: of a row (over every column), "column" for the total of a column, "total" for the
#: grand total. The keys a total sums over are null in its row.
MARGIN = "margin"
MARGINS = ("", "row", "column", "total")

#: Columns `disclosure.rules` adds to a table, in order.
RULE_COLUMNS = (
    "dominance_share",
    "p_ratio",
    "fails_threshold",
    "fails_dominance",
    "fails_p_percent",
    "fails_statistic",
    "negative_values",
    "same_values",
    "empty_cell",
    "no_value",
    "status",
    "reason",
)

#: Columns `disclosure.protect` adds: how each cell is published.
PROTECTION_COLUMNS = ("suppressed", "published", "published_n")

#: Names a key may not have: the evidence, rule and protection columns (listed here so a
#: clash is refused at the first step, not after the cluster ran).
RESERVED_NAMES = (
    *EVIDENCE_COLUMNS,
    CELL_KEY,
    MARGIN,
    *RULE_COLUMNS,
    *PROTECTION_COLUMNS,
    "min_max",
)

#: Largest `top_k`: the dominance rule needs `dominance_n` values; 10 is far above any
#: rule in use and keeps the per-cell expressions small.
MAX_TOP_K = 10

#: Most distinct values a numeric regression predictor may have for its values to be
#: counted as evidence (`Rules.few_values` may not exceed it): enough for any coding of a
#: few categories as numbers, and few enough that the counts stay a small table.
MAX_FEW_VALUES = 20


def is_magnitude(statistic: str) -> bool:
    """True for a magnitude table (a statistic of a value column), False for counts."""
    return statistic != "count"


def check_statistic(statistic: str) -> None:
    """Refuse a statistic not in `STATISTICS`."""
    if statistic not in STATISTICS:
        raise DisclosureInputError(
            f"unknown statistic {statistic!r}",
            fix=f"use one of: {', '.join(STATISTICS)}",
        )


def check_keys(keys: Sequence[str]) -> None:
    """Refuse an empty, duplicated or clashing list of key columns."""
    if isinstance(keys, str) or not keys:
        raise DisclosureInputError(
            f"a table needs a list of one or more key columns, and got {keys!r}",
            fix='pass keys as a list of column names, e.g. ["ward", "sex"]',
        )
    problems = [f"key {key!r} is not a column name" for key in keys if not isinstance(key, str)]
    problems += [
        f"key {key!r} starts with '_', which is kept for the engine's own columns"
        for key in keys
        if isinstance(key, str) and key.startswith("_")
    ]
    problems += [
        f"key {key!r} has the name of a column the checks add ({', '.join(RESERVED_NAMES)})"
        for key in keys
        if key in RESERVED_NAMES
    ]
    duplicates = sorted({k for k in keys if isinstance(k, str) and list(keys).count(k) > 1})
    problems += [f"key {key!r} is listed more than once" for key in duplicates]
    if problems:
        raise DisclosureInputError(
            "the table's keys are not valid",
            reasons=problems,
            fix="list each key column once; rename a clashing column first "
            "(frame.rename({'value': 'value_band'}))",
        )


def check_grid(keys: Sequence[str], groups: Sequence[Sequence[str]]) -> None:
    """Refuse grid groups that are not the table's keys, each key in exactly one group."""
    grouped = [key for group in groups for key in group]
    if (
        isinstance(groups, str)
        or any(isinstance(g, str) for g in groups)
        or (sorted(grouped) != sorted(keys) or not all(groups))
    ):
        raise DisclosureInputError(
            f"grid {groups!r} does not split the keys {list(keys)!r} into groups",
            fix="pass each key in exactly one non-empty group, e.g. grid=[rows, columns]",
        )


def check_top_k(top_k: int) -> None:
    """Refuse a `top_k` outside 1..MAX_TOP_K."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise DisclosureInputError(
            f"top_k must be a whole number from 1 to {MAX_TOP_K}, and is {top_k!r}",
            fix="use at least the dominance rule's n (Rules.dominance_n, usually 2)",
        )


def check_quantile(statistic: str, quantile: float | None) -> None:
    """A quantile strictly between 0 and 1 exactly when the statistic is "quantile"."""
    if statistic == "quantile":
        if (
            isinstance(quantile, bool)
            or not isinstance(quantile, int | float)
            or not 0 < quantile < 1
        ):
            raise DisclosureInputError(
                f"statistic 'quantile' needs a quantile strictly between 0 and 1, and got "
                f"{quantile!r}",
                fix="pass e.g. quantile=0.9 for the 90th percentile (use 'median' for 0.5)",
            )
    elif quantile is not None:
        raise DisclosureInputError(
            f"quantile={quantile!r} is given, but the statistic is {statistic!r}",
            fix="give a quantile only with statistic 'quantile'",
        )


def check_unit(keys: Sequence[str], unit: str | None) -> None:
    """A unit-id column is a plain column name, neither a key nor an engine name."""
    if unit is None:
        return
    problems = []
    if not isinstance(unit, str) or not unit:
        problems.append(f"unit {unit!r} is not a column name")
    elif unit.startswith("_") or unit in RESERVED_NAMES:
        problems.append(f"unit {unit!r} has a name the engine keeps for its own columns")
    elif unit in keys:
        problems.append(f"unit {unit!r} is also a key of the table")
    if problems:
        raise DisclosureInputError(
            "the table's unit-id column is not valid",
            reasons=problems,
            fix="name the column that identifies a person or business (e.g. unit='resident_id'), "
            "not one of the table's keys",
        )


def check_columns(
    schema: pl.Schema,
    keys: Sequence[str],
    value: str | None,
    statistic: str,
    unit: str | None = None,
) -> None:
    """The frame has the keys, the unit-id column if any and, for a magnitude table, a
    numeric value column (a count's optional value column may be of any type)."""
    problems = [f"key column {key!r} is not in the data" for key in keys if key not in schema]
    if unit is not None and unit not in schema:
        problems.append(f"unit-id column {unit!r} is not in the data")
    elif unit is not None and schema[unit].is_nested():
        problems.append(
            f"unit-id column {unit!r} is a {schema[unit]} column; ids must be single values"
        )
    if unit is not None and unit == value:
        problems.append(f"unit-id column {unit!r} is also the value column")
    problems += [
        f"key column {key!r} is a {schema[key]} column; keys must be single values"
        for key in keys
        if key in schema and schema[key].is_nested()
    ]
    if not is_magnitude(statistic):
        # A count with a value column counts the records that have a value, of any type
        # (ACRO's crosstab(values=..., aggfunc="count")); without one, every record.
        if value is not None and value in keys:
            problems.append(f"value column {value!r} is also a key")
        elif value is not None and value not in schema:
            problems.append(f"value column {value!r} is not in the data")
    elif value is None:
        problems.append(f"statistic {statistic!r} needs a value column, and none was given")
    elif value in keys:
        problems.append(f"value column {value!r} is also a key")
    elif value not in schema:
        problems.append(f"value column {value!r} is not in the data")
    elif not schema[value].is_numeric():
        problems.append(
            f"value column {value!r} is a {schema[value]} column; {statistic} needs numbers"
        )
    if problems:
        raise DisclosureInputError(
            "the table cannot be computed from this data",
            reasons=problems,
            fix=f"the data's columns are: {', '.join(schema.names()) or '(none)'}; "
            "choose keys and a numeric value among them (or use statistic 'count', which "
            "counts every record, or with a value column the records that have a value)",
        )


def check_record_key(
    schema: pl.Schema, keys: list[str], value: str | None, unit: str | None, record_key: str | None
) -> None:
    """Refuse a record-key column that is missing, not whole numbers, or also a key, the
    value or the unit."""
    if record_key is None:
        return
    problems = []
    if record_key not in schema:
        problems.append(f"record-key column {record_key!r} is not in the data")
    elif not schema[record_key].is_integer():
        problems.append(
            f"record-key column {record_key!r} is {schema[record_key]}, not whole numbers"
        )
    if record_key in [*keys, value, unit]:
        problems.append(f"record-key column {record_key!r} is also a key, the value or the unit")
    if problems:
        raise DisclosureInputError(
            "the table cannot be computed from this data",
            reasons=problems,
            fix="give each record a key once (disclosure.cellkey.record_keys) in a column of "
            "its own, and name it as record_key",
        )


def check_partial(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    """Refuse a partial or merged aggregate whose columns are not `columns`."""
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        reasons = []
        if missing:
            reasons.append(f"missing column(s): {', '.join(missing)}")
        if extra:
            reasons.append(f"unexpected column(s): {', '.join(extra)}")
        raise DisclosureInputError(
            f"{what} does not match the table's keys, statistic and top_k",
            reasons=reasons,
            fix="call partial(), merge() and finalize() with the same keys, statistic and top_k",
        )
