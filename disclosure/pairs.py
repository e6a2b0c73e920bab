"""One pair of tables that may disclose together: recoverable suppressed cells (the same
population) and small differences (nested, overlapping or versioned populations). See
`disclosure.differencing` for when each is a finding and with which status.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from disclosure.findings import EXAMPLES, Finding
from disclosure.populations import difference_text, relation
from disclosure.published import PublishedTable
from disclosure.recovery import determined
from disclosure.validate import MARGIN

__all__ = [
    "MAX_RECOVERY_ELEMENTS",
    "MAX_RECOVERY_UNKNOWNS",
    "Counts",
    "counts",
    "pair",
    "values_text",
]

#: The largest recovery check tre runs (published cells x suppressed cells, and the
#: suppressed cells alone: the check is a dense rank computation over them). Beyond it
#: the pair is not checked but flagged for a checker, never left to run out of memory.
MAX_RECOVERY_ELEMENTS = 20_000_000
MAX_RECOVERY_UNKNOWNS = 4_000

#: Counts of a table over some of its keys, by key values (None: a suppressed cell in
#: it), kept for the pairs of one request: (table id, keys) -> {values: count}.
Counts = dict[tuple[int, tuple[str, ...]], dict[tuple[str | None, ...], float | None]]


def pair(
    first: PublishedTable, second: PublishedTable, cache: Counts | None = None
) -> list[Finding]:
    cache = {} if cache is None else cache
    if first.measure != second.measure or first.rounded_to or second.rounded_to:
        return []
    kind = relation(first.population, second.population)
    if kind is None:
        return []
    if kind == "same":
        return _recoverable(first, second, "fail")
    if kind == "unknown" and _same_counts(first, second, cache):
        return _recoverable(first, second, "review")
    return _difference(first, second, kind, cache)


def _finding(
    kind: str,
    status: str,
    first: PublishedTable,
    second: PublishedTable,
    message: str,
    cells: list[str],
) -> Finding:
    return Finding(
        kind=kind,
        status=status,
        outputs=(first.name, second.name),
        jobs=(first.job_id, second.job_id),
        message=message,
        cells=tuple(cells[:EXAMPLES]),
        count=len(cells),
    )


def _recoverable(first: PublishedTable, second: PublishedTable, status: str) -> list[Finding]:
    """Suppressed cells that the two tables' published cells determine, and neither alone."""
    if set(second.keys) <= set(first.keys):
        fine, coarse = first, second
    elif set(first.keys) <= set(second.keys):
        fine, coarse = second, first
    else:
        return []
    unknowns = fine.cells.filter((pl.col(MARGIN) == "") & pl.col("suppressed")).height
    published = fine.cells.height + coarse.cells.height
    if unknowns > MAX_RECOVERY_UNKNOWNS or published * unknowns > MAX_RECOVERY_ELEMENTS:
        message = (
            f"{first.label} and {second.label} count the same people, but are too large to "
            f"check whether together they reveal suppressed cells ({published:,} cells, "
            f"{unknowns:,} of them suppressed; tre checks up to {MAX_RECOVERY_UNKNOWNS:,} "
            "suppressed cells): a checker must decide, or the tables can be made coarser"
        )
        return [_finding("unchecked", status, first, second, message, [])]
    together = _determined(fine, [fine, coarse])
    alone = [_determined(fine, [fine])[0], _determined(coarse, [coarse])[0]]
    revealed = []
    for table, fixed, before in zip((fine, coarse), together, alone, strict=True):
        hidden = table.cells.filter(pl.col("suppressed"))
        new = hidden.filter(pl.Series(fixed & ~before))
        revealed += [f"{table.name}: {label}" for label in _labels(table, new)]
    if not revealed:
        return []
    message = (
        f"{first.label} and {second.label} count the same people: together they let "
        f"{len(revealed)} suppressed cell{'s' * (len(revealed) != 1)} be worked out exactly "
        "from the cells and totals published"
    )
    return [_finding("recoverable", status, first, second, message, revealed)]


def _determined(fine: PublishedTable, tables: list[PublishedTable]) -> list[np.ndarray]:
    """For each table, which of its suppressed cells (in order) the published cells of
    all `tables` determine; the unknowns are the suppressed cells of `fine`."""
    inner = fine.cells.filter(pl.col(MARGIN) == "").with_row_index("_f")
    unknown = inner.filter(pl.col("suppressed")).get_column("_f").to_numpy()
    position = np.full(inner.height, -1)
    position[unknown] = np.arange(unknown.size)
    equations, targets = [], []
    for table in tables:
        cells = table.cells.with_row_index("_id")
        members = _members(table, cells, inner)
        matrix = np.zeros((cells.height, unknown.size))
        ids = members.get_column("_id").to_numpy()
        cols = position[members.get_column("_f").to_numpy()]
        matrix[ids[cols >= 0], cols[cols >= 0]] = 1.0
        hidden = cells.get_column("suppressed").to_numpy()
        equations.append(matrix[~hidden])
        targets.append(matrix[hidden])
    if not any(t.shape[0] for t in targets):
        return [np.zeros(0, dtype=bool) for _ in tables]
    fixed = determined(np.vstack(equations), np.vstack(targets))
    bounds = np.cumsum([0, *(t.shape[0] for t in targets)])
    return [fixed[bounds[i] : bounds[i + 1]] for i in range(len(tables))]


def _members(table: PublishedTable, cells: pl.DataFrame, inner: pl.DataFrame) -> pl.DataFrame:
    """(_id, _f) pairs: which of the finest table's cells each of `table`'s cells adds up."""
    parts = []
    for margin, keys in (
        ("", table.keys),
        ("row", list(table.rows)),
        ("column", list(table.columns)),
        ("total", []),
    ):
        chosen = cells.filter(pl.col(MARGIN) == margin).select("_id", *keys)
        if chosen.height == 0:
            continue
        if keys:
            joined = chosen.join(inner.select("_f", *keys), on=keys, how="inner", nulls_equal=True)
        else:
            joined = chosen.join(inner.select("_f"), how="cross")
        parts.append(joined.select("_id", "_f"))
    if not parts:
        return pl.DataFrame(schema={"_id": pl.UInt32, "_f": pl.UInt32})
    return pl.concat(parts)


def _difference(
    first: PublishedTable, second: PublishedTable, kind: str, cache: Counts
) -> list[Finding]:
    """Cells of the two tables' common keys, and their grand totals, whose counts differ
    by a small number. (Plain Python over cached counts: a job's pairs are many and
    small, where a dataframe's per-call cost would dominate.)"""
    common = [key for key in first.keys if key in second.keys]
    rows = _compared(first, second, common, cache)
    if common:
        rows += [(values, a, b, True) for values, a, b, _ in _compared(first, second, [], cache)]
    if not rows:
        return []
    difference = np.array([a - b for _values, a, b, _grand in rows])
    if kind == "overlap":
        return _overlap(first, second, rows, difference)
    if kind == "inside" or (kind == "unknown" and (difference <= 0).all()):
        difference, bigger, smaller = -difference, second, first
    elif kind in ("contains", "versions") or (difference >= 0).all():
        bigger, smaller = first, second
    else:
        return []  # neither is inside the other: these are unrelated groups
    difference = np.abs(difference)
    threshold = max(first.threshold, second.threshold)
    small = (difference > 0) & (difference < threshold)
    if not small.any():
        return []
    labels = [
        "grand total" if grand else values_text(common, values)
        for (values, _a, _b, grand), flagged in zip(rows, small, strict=True)
        if flagged
    ]
    how = {
        "versions": "are the same table over two versions of the data",
        "unknown": "may count one group inside the other",
    }.get(kind, "count one group inside the other")
    message = (
        f"{bigger.label} and {smaller.label} {how}: subtracting one from the other leaves "
        f"between 1 and {threshold - 1} in {len(labels)} cell{'s' * (len(labels) != 1)}"
    )
    status = "fail" if kind in ("contains", "inside") else "review"
    return [_finding("difference", status, first, second, message, labels)]


def _overlap(
    first: PublishedTable,
    second: PublishedTable,
    rows: list[tuple[tuple[str | None, ...], float, float, bool]],
    difference: np.ndarray,
) -> list[Finding]:
    """Two tables over overlapping populations (each has rows the other lacks): their
    difference is the first's own rows less the second's. Someone who knows one of those
    groups is empty (nobody has fewer than 0 conditions) reads the other from a small
    difference, so small differences go to a checker, naming both groups."""
    threshold = max(first.threshold, second.threshold)
    small = (np.abs(difference) > 0) & (np.abs(difference) < threshold)
    if not small.any():
        return []
    common = [key for key in first.keys if key in second.keys]
    labels = [
        "grand total" if grand else values_text(common, values)
        for (values, _a, _b, grand), flagged in zip(rows, small, strict=True)
        if flagged
    ]
    groups = difference_text(first.population or {}, second.population or {})
    which = (
        f" ({groups[0]}, less {groups[1]}: where nobody has {groups[1]}, that is the "
        f"people with {groups[0]})"
        if groups
        else ""
    )
    message = (
        f"{first.label} and {second.label} count overlapping groups: subtracting one from "
        f"the other leaves between 1 and {threshold - 1} in {len(labels)} "
        f"cell{'s' * (len(labels) != 1)}{which}"
    )
    return [_finding("difference", "review", first, second, message, labels)]


def _compared(
    first: PublishedTable, second: PublishedTable, keys: list[str], cache: Counts
) -> list[tuple[tuple[str | None, ...], float, float, bool]]:
    """Both tables' counts over `keys`, side by side, where both are known:
    (key values, count of the first, count of the second, whether a grand total)."""
    a, b = counts(first, keys, cache), counts(second, keys, cache)
    return [
        (values, count, other, not keys)
        for values, count in a.items()
        if count is not None and (other := b.get(values)) is not None
    ]


def counts(
    table: PublishedTable, keys: list[str], cache: Counts
) -> dict[tuple[str | None, ...], float | None]:
    """`_coarsened` as a mapping from key values to the count, computed once per request."""
    entry = (id(table), tuple(keys))
    if entry not in cache:
        frame = _coarsened(table, keys)
        values = frame.select(keys).rows() if keys else [()] * frame.height
        cache[entry] = dict(zip(values, frame.get_column("count").to_list(), strict=True))
    return cache[entry]


def values_text(keys: list[str], values: tuple[str | None, ...]) -> str:
    """A cell named by its keys, as `_keys_text` names it: "ward w3, age 0-15"."""
    if not keys:
        return "all"
    return ", ".join(
        f"{key} {'(missing)' if value is None else value}"
        for key, value in zip(keys, values, strict=True)
    )


def _coarsened(table: PublishedTable, keys: list[str]) -> pl.DataFrame:
    """The table's counts over `keys` (a subset of its keys): a published total that is
    exactly that, or the sums of its cells (null where a cell is suppressed)."""
    cells = table.cells
    for margin, kept in (("", table.keys), ("row", table.rows), ("column", table.columns)):
        if kept and set(kept) == set(keys):
            found = cells.filter(pl.col(MARGIN) == margin)
            if found.height:
                return found.select(*keys, "count")
    if not keys:
        found = cells.filter(pl.col(MARGIN) == "total")
        if found.height:
            return found.select("count")
    inner = cells.filter(pl.col(MARGIN) == "")
    count = pl.when(pl.col("suppressed").any()).then(None).otherwise(pl.col("count").sum())
    if not keys:
        return inner.select(count.alias("count"))
    return inner.group_by(keys).agg(count.alias("count"))


def _same_counts(first: PublishedTable, second: PublishedTable, cache: Counts) -> bool:
    """Whether two tables with unknown filters agree on every count of their common keys
    (then they most likely count the same rows)."""
    common = [key for key in first.keys if key in second.keys]
    joined = _compared(first, second, common, cache)
    return bool(joined) and all(a == b for _values, a, b, _grand in joined)


def _keys_text(keys: Sequence[str]) -> pl.Expr:
    if not keys:
        return pl.lit("all")
    return pl.concat_str(
        [pl.lit(f"{key} ") + pl.col(key).cast(pl.String).fill_null("(missing)") for key in keys],
        separator=", ",
    )


def _labels(table: PublishedTable, cells: pl.DataFrame) -> list[str]:
    """Each cell named by its keys, e.g. "ward A, sex F"; totals say what they add up."""
    margin = pl.col(MARGIN)
    label = (
        pl.when(margin == "total")
        .then(pl.lit("grand total"))
        .when(margin == "row")
        .then(pl.lit("total of ") + _keys_text(table.rows))
        .when(margin == "column")
        .then(pl.lit("total of ") + _keys_text(table.columns))
        .otherwise(_keys_text(table.keys))
    )
    return cells.select(label.alias("label")).get_column("label").to_list()
