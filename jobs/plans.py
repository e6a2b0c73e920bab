"""Plan mode: a python step's table, computed by tre's engine from the code's own plan.

Researcher code builds a polars LazyFrame from `ctx.dataset(...)` and hands it to
`ctx.table(...)`. Whatever the code computes itself, it could also edit, so tre
serialises the LazyFrame's plan (polars' JSON form) and its engine, in a sandbox the
code never ran in, checks the plan and runs it again on its own copy of the data, then
computes the cells and their disclosure evidence itself (jobs/handover.py).

What a plan may hold is an allow-list, not a deny-list: every key of its JSON must be
one that the plans in `_corpus` serialise to (scans of the step's datasets, filters,
selections by name and new columns made of comparisons, arithmetic, casts, conditions,
string tests, null handling, renames, and vertical concatenation). So no Python function
(`map_elements`, `map_batches`), no in-memory frame, no aggregation, join, explode or
column selector (`pl.all()`, regular expressions), and nothing else polars may add in a
later version, gets through: those plans are refused, in tre's words, and the table
falls back to free mode (advisory: disclosure/advisory.py).

Each scan must read a file `ctx.dataset` wrote for a dataset the step may read, with
columns its spec declares; the engine points it at its own copy of those columns, which
also holds `UNIT`: who each row is about (the dataset's declared unit, else the row's
own place in the dataset). `run` makes every selection keep `UNIT`, so each output row
still carries it whatever the plan kept, and contributors are counted by it: a plan that
repeats rows (concatenates a frame with itself) cannot make a cell look bigger. Every
allowed operation maps one row to one row, or drops it, so no plan can give two copies
of a row different units. A plan that names `UNIT` is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

SUFFIX = ".arrow"
MAX_PLAN_BYTES = 1 << 20
#: The engine's column of who each row is about, in its own copies of the data only. No
#: dataset column can have this name (a column name has no '-'), and no string in a
#: plan may contain it, so a plan can neither read nor overwrite it.
UNIT = "tre-unit"


class PlanRefused(Exception):
    """The plan cannot be run by the engine; the message is tre's own words."""


def scan_file(folder: Path, dataset: str, columns: Sequence[str]) -> Path:
    """Where `ctx.dataset` keeps `columns` of `dataset` for the code to scan: the name
    tells the engine which dataset and columns a scan reads."""
    digest = hashlib.sha256("\0".join(columns).encode()).hexdigest()[:16]
    return folder / f"{dataset}.{digest}{SUFFIX}"


def to_json(frame: pl.LazyFrame) -> str:
    """The plan of `frame` in polars' JSON form (deprecated in polars for stability
    across versions; tre pins polars, and both sides run the same one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return frame.serialize(format="json")


def _corpus() -> Iterator[pl.LazyFrame]:
    """The plans whose JSON keys make the allow-list (what plan mode accepts)."""
    lf = pl.scan_ipc("/corpus/d.0000000000000000.arrow")
    a, b, s = pl.col("a"), pl.col("b"), pl.col("s")
    yield lf
    yield lf.filter((a > 1) & (a >= 1) & (a < 1) & (a <= 1) & (a == 1) & (a != 1) | ~b.is_null())
    yield lf.filter(a.is_in([1, 2]) & s.is_in(["x"]) & a.is_not_null() & a.is_between(1, 2))
    yield lf.with_columns(
        pl.when(a > 1).then(pl.lit("x")).otherwise(pl.lit("y")).alias("c"),
        a.cast(pl.Float64).round(1).alias("r"),
        (a + 1 - 2 * 3 / 4 // 5 % 6).abs().alias("m"),
        a.fill_null(0).alias("f"),
        a.clip(0, 9).alias("k"),
        a.floor().alias("fl"),
        a.ceil().alias("ce"),
        s.str.contains("x", literal=True).alias("t"),
        s.str.starts_with("x").alias("u"),
        s.str.ends_with("x").alias("v"),
        s.str.to_lowercase().alias("w"),
        s.str.to_uppercase().alias("W"),
        s.cast(pl.String).alias("z"),
        pl.lit(1.5).alias("l"),
        pl.lit(True).alias("L"),
        pl.lit(None).alias("N"),
    )
    yield lf.select([a, b.alias("c")]).rename({"c": "d"})
    yield pl.concat([lf, lf])


def _keys(value: object, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(key)
            _keys(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _keys(inner, found)
    return found


ALLOWED_KEYS = frozenset().union(*(_keys(json.loads(to_json(p)), set()) for p in _corpus()))
#: What the researcher wrote, by the plan's node for it: only these words are shown (a
#: plan is the code's own JSON, so its other keys are never quoted).
_OPERATIONS = {
    "AnonymousFunction": "Python functions (map_elements)",
    "OpaquePython": "Python functions (map_batches)",
    "PythonScan": "Python functions (a Python data source)",
    "DataFrameScan": "in-memory frames",
    "GroupBy": "aggregations (group_by)",
    "Agg": "aggregations",
    "Over": "window functions (over)",
    "Join": "joins",
    "Distinct": "distinct rows (unique)",
    "Slice": "slices (head, tail, slice)",
    "Sort": "sorting",
    "Explode": "explode",
    "Selector": "column selectors (pl.all, regular expressions, drop)",
    "HConcat": "horizontal concatenation",
}
#: Scan settings that must stay unset: each could reach past the file the plan names.
_UNSET = ("credential_provider", "deletion_files", "column_mapping", "default_values")


def check(
    plan: str,
    declared: Mapping[str, Sequence[str]],
    asked: Mapping[str, Sequence[str]],
    *,
    concatenation: bool = True,
) -> dict[str, tuple[str, list[str]]]:
    """The files `plan` scans, as file name -> (dataset, columns), if every part of it
    is allowed and each scan reads a file `ctx.dataset` made: for a dataset the step may
    read (`declared`: its name -> declared columns), holding the columns `asked` records
    for that file name (checked: declared, and the name made from them). PlanRefused,
    in tre's words, if not. Without `concatenation` (a regression, fitted on rows, not
    counted by unit), a plan that concatenates frames is refused too."""
    if len(plan) > MAX_PLAN_BYTES:
        raise PlanRefused(f"its plan is over {MAX_PLAN_BYTES >> 20} MiB")
    try:
        tree = _without_cache(json.loads(plan))
    except ValueError:
        raise PlanRefused("its plan is not a polars plan") from None
    extra = _keys(tree, set()) - ALLOWED_KEYS
    if extra:
        named = sorted({_OPERATIONS[key] for key in extra if key in _OPERATIONS})
        raise PlanRefused(
            "its plan uses what plan mode does not run: "
            + (", ".join(named) if named else "operations outside its list")
            + " (plan mode runs scans, filters, selections by name, new columns and "
            "pl.concat)"
        )
    if not concatenation and "Union" in _keys(tree, set()):
        raise PlanRefused(
            "its plan concatenates frames, and a regression is fitted on rows: a row "
            "repeated would look like more people"
        )
    if any(UNIT in text for text in _strings(tree)):
        raise PlanRefused(f"its plan names {UNIT}, a column tre keeps for itself")
    files: dict[str, tuple[str, list[str]]] = {}
    for scan in _scans(tree):
        for key in _UNSET:
            if _find(scan, key) not in (None, [], {}):
                raise PlanRefused(f"a scan in its plan sets {key}")
        paths = scan.get("sources", {}).get("Paths") if isinstance(scan, dict) else None
        if not isinstance(paths, list) or len(paths) != 1 or not isinstance(paths[0], dict):
            raise PlanRefused("a scan in its plan does not read exactly one file")
        name = Path(str(paths[0].get("inner"))).name
        dataset = name.split(".", 1)[0]
        columns = [str(c) for c in asked.get(name, [])]
        if (
            dataset not in declared
            or not columns
            or not set(columns) <= set(declared[dataset])
            or scan_file(Path("."), dataset, columns).name != name
        ):
            raise PlanRefused("a scan in its plan reads a file ctx.dataset did not make")
        files[name] = (dataset, columns)
    if not files:
        raise PlanRefused("its plan reads no dataset")
    return files


def _without_cache(tree: object) -> object:
    """The plan as written: polars keeps a resolved copy beside a plan once its schema
    was asked for ({"IR": {"dsl": <the plan>, "version": n}}); only the plan counts."""
    if isinstance(tree, dict):
        cached = tree.get("IR")
        if len(tree) == 1 and isinstance(cached, dict) and "dsl" in cached:
            return _without_cache(cached["dsl"])
        return {key: _without_cache(inner) for key, inner in tree.items()}
    if isinstance(tree, list):
        return [_without_cache(inner) for inner in tree]
    return tree


def _strings(tree: object) -> Iterator[str]:
    """Every key and text value in `tree`."""
    if isinstance(tree, dict):
        for key, inner in tree.items():
            yield str(key)
            yield from _strings(inner)
    elif isinstance(tree, list):
        for inner in tree:
            yield from _strings(inner)
    elif isinstance(tree, str):
        yield tree


def _scans(tree: object) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        for key, inner in tree.items():
            if key == "Scan" and isinstance(inner, dict):
                yield inner
            else:
                yield from _scans(inner)
    elif isinstance(tree, list):
        for inner in tree:
            yield from _scans(inner)


def _find(tree: object, wanted: str) -> object:
    if isinstance(tree, dict):
        for key, inner in tree.items():
            if key == wanted:
                return inner
            found = _find(inner, wanted)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for inner in tree:
            found = _find(inner, wanted)
            if found is not None:
                return found
    return None


def run(plan: str, files: Mapping[str, Path]) -> pl.DataFrame:
    """Run a checked `plan` with each scan's file name replaced by the engine's own copy
    (`files`: file name -> path, each copy holding `UNIT`), keeping `UNIT` in its rows."""
    tree = _without_cache(json.loads(plan))
    _repoint(tree, files)
    tree = _carry_unit(tree)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = pl.LazyFrame.deserialize(io.StringIO(json.dumps(tree)), format="json")
    return frame.collect()


def _repoint(tree: object, files: Mapping[str, Path]) -> None:
    for scan in _scans(tree):
        entry = scan["sources"]["Paths"][0]
        entry["inner"] = str(files[Path(entry["inner"]).name])


def _carry_unit(tree: object) -> object:
    """`tree` with `UNIT` kept by every selection, and last in every input of a
    concatenation (whose inputs must list their columns in one order)."""
    if isinstance(tree, list):
        return [_carry_unit(inner) for inner in tree]
    if not isinstance(tree, dict):
        return tree
    tree = {key: _carry_unit(inner) for key, inner in tree.items()}
    select = tree.get("Select")
    if isinstance(select, dict) and isinstance(select.get("expr"), list):
        select["expr"] = [*select["expr"], {"Column": UNIT}]
    union = tree.get("Union")
    if isinstance(union, dict) and isinstance(union.get("inputs"), list):
        union["inputs"] = [_unit_last(inner) for inner in union["inputs"]]
    return tree


def _unit_last(tree: object) -> dict[str, Any]:
    """A selection of every column of `tree`, `UNIT` last."""
    template = _unit_last_template()
    return {"Select": {**template["Select"], "input": tree}}


def _unit_last_template() -> dict[str, Any]:
    frame = pl.LazyFrame(schema={UNIT: pl.Int64})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = frame.select(pl.exclude(UNIT), pl.col(UNIT)).serialize(format="json")
    template: dict[str, Any] = json.loads(text)
    return template
