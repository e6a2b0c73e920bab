"""Reading approved columns into polars and applying a step's filters and link."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl
from distributed import Client

from jobs.spec import Filter, Link
from tre.secured import frames as secured_frames
from tre.secured.reader import Fragment, SecuredSource, read_fragment, read_table


def read_fragment_frame(
    source: SecuredSource,
    fragment: Fragment,
    columns: Sequence[str],
    categorical: Sequence[str] = (),
    where: pl.Expr | None = None,
) -> pl.DataFrame:
    """One fragment of `source` as polars (decrypted here, on the worker).

    Two readers, chosen by what is read (docs/performance.md, "Reading secured
    Parquet"):
    - pyarrow, when every text column read is in `categorical`: those arrive as polars
      Categorical, read from the Parquet dictionaries without decoding every string,
      and grouping on them is about twice as fast. Callers cast them back to String in
      their (small) results.
    - polars, with `where` (a step's filters, see `filter_expression`), or when other
      text columns are read (a unit id, a link key): polars keeps only matching rows
      while reading, and decodes text about twice as fast as pyarrow then polars'
      copy. Keys then arrive as String.
    """
    text = {name for name, dtype, _ in source.columns if dtype in ("string", "large_string")}
    dictionary = [c for c in categorical if c in text]
    if where is not None or any(c in text and c not in dictionary for c in columns):
        return secured_frames.read_frame(source, fragment, sorted(set(columns)), where)
    frame = pl.from_arrow(read_fragment(source, fragment, sorted(set(columns)), dictionary))
    assert isinstance(frame, pl.DataFrame)
    return frame


def read_frame(source: SecuredSource, columns: Sequence[str]) -> pl.DataFrame:
    """The whole of `source` (only `columns`) as polars, on the worker."""
    frame = pl.from_arrow(read_table(source, sorted(set(columns))))
    assert isinstance(frame, pl.DataFrame)
    return frame


def filter_expression(filters: Iterable[Filter]) -> pl.Expr | None:
    """One polars expression for all filters (they combine with AND), or None."""
    expressions = []
    for f in filters:
        col = pl.col(f.column)
        match f.op:
            case "==":
                expressions.append(col == f.value)
            case "!=":
                expressions.append(col != f.value)
            case "<":
                expressions.append(col < f.value)
            case "<=":
                expressions.append(col <= f.value)
            case ">":
                expressions.append(col > f.value)
            case ">=":
                expressions.append(col >= f.value)
            case "in":
                expressions.append(col.is_in(_as_list(f.value)))
            case "not in":
                expressions.append(~col.is_in(_as_list(f.value)))
            case "is null":
                expressions.append(col.is_null())
            case "not null":
                expressions.append(col.is_not_null())
            case _:
                raise AssertionError(f"unhandled filter op {f.op}")
    if not expressions:
        return None
    combined = expressions[0]
    for expression in expressions[1:]:
        combined = combined & expression
    return combined


def apply_filters(frame: pl.DataFrame, filters: Sequence[Filter]) -> pl.DataFrame:
    expression = filter_expression(filters)
    return frame if expression is None else frame.filter(expression)


def apply_link(frame: pl.DataFrame, link: Link | None, right: pl.DataFrame | None) -> pl.DataFrame:
    """Join the linked dataset's frame on the pseudonymous key (a no-op without a link)."""
    if link is None or right is None:
        return frame
    return frame.join(right, on=link.on, how=link.how, nulls_equal=False)


def link_frame(source: SecuredSource, link: Link) -> pl.DataFrame:
    """Runs on a worker: the linked dataset's key and requested columns."""
    return read_frame(source, [link.on, *link.columns])


def submit_link(client: Client, link: Link | None, sources: dict[str, SecuredSource]) -> Any:
    """Read the linked side once, on a worker (a future), or None without a link.

    A broadcast join: the future is shipped between workers to each fragment's task and
    never comes back to the job process.
    """
    if link is None:
        return None
    return client.submit(link_frame, sources[link.dataset], link, pure=False)


def binned(frame: pl.DataFrame, bins: dict[str, list[float]]) -> pl.DataFrame:
    """`frame` with each binned column replaced by its bin's label ("< 0", "[0, 16)",
    ">= 85"; see TableStep.bins); a missing value stays missing."""
    if not bins:
        return frame
    return frame.with_columns(
        bin_labels(pl.col(column), edges).alias(column) for column, edges in bins.items()
    )


def bin_labels(value: pl.Expr, edges: list[float]) -> pl.Expr:
    """The label of the bin `value` falls in, by `edges` (increasing)."""
    shown = [_edge(e) for e in edges]
    label: Any = pl.when(value < edges[0]).then(pl.lit(f"< {shown[0]}"))
    for high, said_low, said_high in zip(edges[1:], shown, shown[1:], strict=False):
        label = label.when(value < high).then(pl.lit(f"[{said_low}, {said_high})"))
    done: pl.Expr = label.when(value.is_not_null()).then(pl.lit(f">= {shown[-1]}")).otherwise(None)
    return done


def _edge(edge: float) -> str:
    """An edge as people write it: 16, not 16.0."""
    return str(int(edge)) if float(edge).is_integer() else repr(float(edge))


def main_columns(named: set[str], link: Link | None) -> set[str]:
    """Columns a step reads from its main dataset: what it names, less the linked ones."""
    if link is None:
        return named
    return (named - set(link.columns)) | {link.on}


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def split_filters(
    filters: Sequence[Filter], link: Link | None
) -> tuple[pl.Expr | None, list[Filter]]:
    """The filters on the main dataset's own columns, as one expression to push into the
    read (polars then skips non-matching rows while reading), and the rest (on linked
    columns), which can only apply after the join."""
    linked = set(link.columns) if link is not None else set()
    early = [f for f in filters if f.column not in linked]
    late = [f for f in filters if f.column in linked]
    return filter_expression(early), late
