"""Which rows a table counts, understood: how the populations of two tables relate.

A table's population (`PublishedTable.population`) names its datasets (with versions),
link and filters. Filters are the job's conditions in a canonical text form,
`column op json-value` ("ltc_count <= 7", 'sex in ["f", "m"]', "age_band not null"),
and a population is their conjunction. Each condition is read as a set of values of its
column (`ValueSet`): comparisons as intervals (numbers, or text in its sort order),
`==` / `in` as points, `!=` / `not in` as what lies between them, `is null` / `not null`
as the null value alone or everything else. Every comparison excludes nulls, as polars'
filters do. A population is then the product of its columns' sets, so:

- B inside A exactly when each column's set of B lies within A's (`contains`);
- they are disjoint when some column's sets do not meet;
- otherwise they overlap, and subtracting one table from the other leaves the people in
  A and not B less those in B and not A (`difference_text` names both).

Two facts make more pairs comparable. A column of whole numbers (`types`: "integer")
reads `> 7` as `>= 8`, so "ltc_count > 7" and "ltc_count >= 8" are the same population.
A condition that holds for every value a column has (the caller's knowledge of its data,
applied before the population is recorded: "ltc_count >= 0" where no count is negative)
should be recorded as "not null": then "ltc_count >= 0" holds "ltc_count <= 7".

A filter this module cannot read (a hand-made population, another writer's condition)
leaves the pair to the plain comparison of the filters as text, as before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OPS",
    "Interval",
    "ValueSet",
    "condition_set",
    "difference_text",
    "parse_condition",
    "population_sets",
    "relation",
    "set_text",
]

#: The operators of a condition, longest first (so "not in" is not read as "in").
OPS = ("not null", "is null", "not in", "in", "<=", ">=", "==", "!=", "<", ">")

_LOW, _HIGH = -math.inf, math.inf


@dataclass(frozen=True)
class Interval:
    """Values from `low` to `high` (numbers, or text in its sort order), each end in or
    out; -inf and +inf for no bound."""

    low: Any  # a number or text; -inf: unbounded below
    low_closed: bool
    high: Any  # +inf: unbounded above
    high_closed: bool

    def empty(self) -> bool:
        if self.low == _LOW or self.high == _HIGH:
            return False
        return self.low > self.high or (
            self.low == self.high and not (self.low_closed and self.high_closed)
        )


@dataclass(frozen=True)
class ValueSet:
    """Some values of one column: intervals (disjoint, in order) and perhaps null."""

    intervals: tuple[Interval, ...]
    nulls: bool

    @classmethod
    def everything(cls) -> ValueSet:
        return cls((Interval(_LOW, False, _HIGH, False),), True)

    def is_empty(self) -> bool:
        return not self.intervals and not self.nulls

    def meet(self, other: ValueSet, integer: bool = False) -> ValueSet:
        """The values in both."""
        parts = [_meet(a, b) for a in self.intervals for b in other.intervals]
        return _canonical(parts, self.nulls and other.nulls, integer)

    def within(self, other: ValueSet, integer: bool = False) -> bool:
        """Whether every value of this set is in `other`."""
        return self.meet(other, integer) == _canonical(list(self.intervals), self.nulls, integer)


def parse_condition(text: str) -> tuple[str, str, Any] | None:
    """(column, op, value) of a condition in canonical text, or None if unreadable."""
    column, _, rest = text.partition(" ")
    if not column or not rest:
        return None
    for op in OPS:
        if rest == op or rest.startswith(op + " "):
            shown = rest[len(op) :].strip()
            if op in ("is null", "not null"):
                return (column, op, None) if not shown else None
            try:
                value = json.loads(shown)
            except ValueError:
                return None
            return column, op, value
    return None


def condition_set(op: str, value: Any, integer: bool = False) -> ValueSet | None:
    """The values a condition keeps (None: one this module cannot read, such as a value
    that is neither a number nor text, or a list of both)."""
    if op == "is null":
        return ValueSet((), True)
    if op == "not null":
        return ValueSet((Interval(_LOW, False, _HIGH, False),), False)
    values = value if op in ("in", "not in") else [value]
    if not isinstance(values, list) or not _comparable(values):
        return None
    if op in ("==", "in"):
        parts = [Interval(v, True, v, True) for v in values]
    elif op in ("!=", "not in"):
        parts, low, closed = [], _LOW, False
        for v in sorted(set(values)):
            parts.append(Interval(low, closed, v, False))
            low, closed = v, False
        parts.append(Interval(low, closed, _HIGH, False))
    else:
        (v,) = values
        parts = [
            {
                "<": Interval(_LOW, False, v, False),
                "<=": Interval(_LOW, False, v, True),
                ">": Interval(v, False, _HIGH, False),
                ">=": Interval(v, True, _HIGH, False),
            }[op]
        ]
    return _canonical(parts, False, integer)


def population_sets(filters: Sequence[str], types: Mapping[str, str]) -> dict[str, ValueSet] | None:
    """Each filtered column's set of values (None if any filter cannot be read)."""
    sets: dict[str, ValueSet] = {}
    for text in filters:
        parsed = parse_condition(str(text))
        if parsed is None:
            return None
        column, op, value = parsed
        integer = types.get(column) == "integer"
        kept = condition_set(op, value, integer)
        if kept is None:
            return None
        before = sets.get(column)
        if before is not None and not _same_kind(before, kept):
            return None  # text against numbers: no order to reason with
        sets[column] = kept if before is None else before.meet(kept, integer)
    return sets


def relation(first: Mapping[str, Any] | None, second: Mapping[str, Any] | None) -> str | None:
    """How two populations relate: "same", "contains" (the first holds the second),
    "inside", "overlap" (they share rows, and each has rows the other lacks), "unknown"
    (same data, filters unknown), "versions" (same data and filters over different
    dataset versions) or None (unrelated, disjoint, or nothing known)."""
    if first is None or second is None:
        return None
    one, two = dict(first.get("datasets") or {}), dict(second.get("datasets") or {})
    if sorted(one) != sorted(two) or first.get("link") != second.get("link"):
        return None
    filters_one, filters_two = first.get("filters"), second.get("filters")
    if filters_one is None or filters_two is None:
        return "unknown"
    types = {**dict(first.get("types") or {}), **dict(second.get("types") or {})}
    a, b = population_sets(filters_one, types), population_sets(filters_two, types)
    kind = "unreadable" if a is None or b is None else _semantic(a, b, types)
    if kind == "unreadable":
        kind = _textual(set(filters_one), set(filters_two))
    if kind == "same":
        known = all(one[d] is not None and two[d] is not None for d in one)
        return "versions" if known and one != two else "same"
    return kind


def difference_text(first: Mapping[str, Any], second: Mapping[str, Any]) -> tuple[str, str] | None:
    """For two overlapping populations that differ in one column only: the rows in the
    first and not the second, and those in the second and not the first, as conditions
    ("ltc_count >= 8", "ltc_count < 0"); None otherwise."""
    types = {**dict(first.get("types") or {}), **dict(second.get("types") or {})}
    a = population_sets(first.get("filters") or [], types)
    b = population_sets(second.get("filters") or [], types)
    if a is None or b is None:
        return None
    differing = [
        c
        for c in sorted({*a, *b})
        if a.get(c, ValueSet.everything()) != b.get(c, ValueSet.everything())
    ]
    if len(differing) != 1:
        return None
    (column,) = differing
    integer = types.get(column) == "integer"
    one, two = a.get(column, ValueSet.everything()), b.get(column, ValueSet.everything())
    return (
        set_text(column, _minus(one, two, integer)),
        set_text(column, _minus(two, one, integer)),
    )


# --- sets of values ----------------------------------------------------------------------


def _semantic(
    a: dict[str, ValueSet], b: dict[str, ValueSet], types: Mapping[str, str]
) -> str | None:
    inside = contains = True
    for column in {*a, *b}:
        integer = types.get(column) == "integer"
        one, two = a.get(column, ValueSet.everything()), b.get(column, ValueSet.everything())
        if not _same_kind(one, two):
            return "unreadable"  # text against numbers: no order to reason with
        if one.meet(two, integer).is_empty():
            return None  # disjoint: nothing one table says about the other's rows
        contains = contains and two.within(one, integer)
        inside = inside and one.within(two, integer)
    if contains and inside:
        return "same"
    if contains:
        return "contains"
    if inside:
        return "inside"
    return "overlap"


def _textual(a: set[str], b: set[str]) -> str | None:
    """The filters compared as text (a filter more is a population inside)."""
    if a == b:
        return "same"
    if a < b:
        return "contains"
    if b < a:
        return "inside"
    return None


def _comparable(values: list[Any]) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    texts = all(isinstance(v, str) for v in values)
    flags = all(isinstance(v, bool) for v in values)
    return (
        bool(values)
        and (numbers or texts or flags)
        and not any(isinstance(v, float) and math.isnan(v) for v in values)
    )


def _kind(interval: Interval) -> str | None:
    for end in (interval.low, interval.high):
        if end not in (_LOW, _HIGH):
            return "text" if isinstance(end, str) else "number"
    return None


def _same_kind(one: ValueSet, two: ValueSet) -> bool:
    kinds = {k for i in (*one.intervals, *two.intervals) if (k := _kind(i)) is not None}
    return len(kinds) <= 1


def _meet(a: Interval, b: Interval) -> Interval:
    low, low_closed = _later_low(a, b)
    high, high_closed = _earlier_high(a, b)
    return Interval(low, low_closed, high, high_closed)


def _later_low(a: Interval, b: Interval) -> tuple[Any, bool]:
    if a.low == b.low:
        return a.low, a.low_closed and b.low_closed
    if a.low == _LOW:
        return b.low, b.low_closed
    if b.low == _LOW:
        return a.low, a.low_closed
    return (a.low, a.low_closed) if a.low > b.low else (b.low, b.low_closed)


def _earlier_high(a: Interval, b: Interval) -> tuple[Any, bool]:
    if a.high == b.high:
        return a.high, a.high_closed and b.high_closed
    if a.high == _HIGH:
        return b.high, b.high_closed
    if b.high == _HIGH:
        return a.high, a.high_closed
    return (a.high, a.high_closed) if a.high < b.high else (b.high, b.high_closed)


def _whole(interval: Interval) -> Interval:
    """On whole numbers: the same interval with closed whole-number ends."""
    low, high = interval.low, interval.high
    low_closed, high_closed = interval.low_closed, interval.high_closed
    if low != _LOW:
        low = math.floor(low) + 1 if (low == math.floor(low) and not low_closed) else math.ceil(low)
        low_closed = True
    if high != _HIGH:
        high = (
            math.ceil(high) - 1
            if (high == math.ceil(high) and not high_closed)
            else math.floor(high)
        )
        high_closed = True
    return Interval(low, low_closed, high, high_closed)


def _sort_key(interval: Interval) -> tuple[int, Any, int]:
    if interval.low == _LOW:
        return (0, 0, 0)
    return (1, interval.low, 0 if interval.low_closed else 1)


def _touches(before: Interval, after: Interval, integer: bool) -> bool:
    """Whether `after` (starting no earlier) meets or adjoins `before`."""
    if before.high == _HIGH or after.low == _LOW:
        return True
    if integer:
        return bool(after.low <= before.high + 1)
    if after.low < before.high:
        return True
    return bool(after.low == before.high and (before.high_closed or after.low_closed))


def _canonical(parts: list[Interval], nulls: bool, integer: bool) -> ValueSet:
    """Disjoint, merged and ordered (whole-number ends for an integer column)."""
    if integer:
        parts = [_whole(p) if _kind(p) in ("number", None) else p for p in parts]
    parts = sorted((p for p in parts if not p.empty()), key=_sort_key)
    merged: list[Interval] = []
    for part in parts:
        if merged and _touches(merged[-1], part, integer):
            last = merged[-1]
            high, high_closed = _later_high(last, part)
            merged[-1] = Interval(last.low, last.low_closed, high, high_closed)
        else:
            merged.append(part)
    return ValueSet(tuple(merged), nulls)


def _later_high(a: Interval, b: Interval) -> tuple[Any, bool]:
    if a.high == b.high:
        return a.high, a.high_closed or b.high_closed
    if _HIGH in (a.high, b.high):
        return _HIGH, False
    return (a.high, a.high_closed) if a.high > b.high else (b.high, b.high_closed)


def _minus(one: ValueSet, two: ValueSet, integer: bool) -> ValueSet:
    """The values of `one` not in `two`."""
    outside = _complement(two)
    return one.meet(outside, integer)


def _complement(values: ValueSet) -> ValueSet:
    parts, low, closed = [], _LOW, False
    for interval in values.intervals:
        parts.append(Interval(low, closed, interval.low, not interval.low_closed))
        low, closed = interval.high, not interval.high_closed
    parts.append(Interval(low, closed, _HIGH, False))
    return ValueSet(tuple(p for p in parts if not _degenerate(p)), not values.nulls)


def _degenerate(interval: Interval) -> bool:
    """An interval from -inf to -inf (or +inf to +inf): what the complement's ends leave."""
    return (interval.low == interval.high and interval.low in (_LOW, _HIGH)) or interval.empty()


def set_text(column: str, values: ValueSet) -> str:
    """The set as conditions people read: "ltc_count >= 8", "age in [3, 5]", "nobody"."""
    if values.is_empty():
        return "nobody"
    said = [_interval_text(column, i) for i in values.intervals]
    if values.nulls:
        said.append(f"{column} is missing")
    return " or ".join(said)


def _interval_text(column: str, interval: Interval) -> str:
    low, high = interval.low, interval.high
    shown = json.dumps
    if low == _LOW and high == _HIGH:
        return f"{column} has a value"
    if low == high:
        return f"{column} == {shown(low)}"
    if low == _LOW:
        return f"{column} {'<=' if interval.high_closed else '<'} {shown(high)}"
    if high == _HIGH:
        return f"{column} {'>=' if interval.low_closed else '>'} {shown(low)}"
    return (
        f"{column} {'>=' if interval.low_closed else '>'} {shown(low)} and "
        f"{'<=' if interval.high_closed else '<'} {shown(high)}"
    )
