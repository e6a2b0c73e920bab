"""The table step's grid: rows x columns completed, nested row keys kept as observed."""

import polars as pl

from disclosure import aggregate
from jobs.spec import TableStep
from jobs.table_step import finalize_table


def test_nested_row_keys_do_not_invent_impossible_cells():
    frame = pl.DataFrame(
        {
            "authority": ["Halton"] * 3 + ["Wirral"] * 3,
            "ward": ["Ditton", "Ditton", "Mersey", "Hoylake", "Hoylake", "Liscard"],
            "sex": ["F", "M", "F", "F", "M", "M"],
        }
    )
    step = TableStep(
        kind="table", name="t", dataset="d", rows=["authority", "ward"], columns=["sex"]
    )
    cells = finalize_table(aggregate.partial(frame, step.keys, None, "count"), step)
    pairs = set(cells.select("authority", "ward").unique().iter_rows())
    assert pairs == {
        ("Halton", "Ditton"),
        ("Halton", "Mersey"),
        ("Wirral", "Hoylake"),
        ("Wirral", "Liscard"),
    }
    # ...but every observed row is completed across the columns, so empty cells show.
    assert cells.height == 8
    assert cells.filter(pl.col("n") == 0).height == 2


def _table(name: str, dataset: str = "residents", **extra) -> TableStep:
    return TableStep(kind="table", name=name, dataset=dataset, rows=["ward"], **extra)


def test_consecutive_table_steps_share_reads_only_when_they_read_the_same_rows():
    from jobs.engine import _groups
    from jobs.spec import PythonStep

    older = ["age_band == '85+'"]
    steps = [
        _table("a", filter=older),
        _table("b", value="cost", statistic="mean", filter=older),  # same rows: with a
        _table("c"),  # no filter: other rows
        _table("d", dataset="fire"),  # another dataset
        PythonStep(kind="python", name="p", function="f.py:f"),
        _table("e", dataset="fire"),  # after a python step: alone
        _table("f", dataset="fire", link={"dataset": "residents", "on": "id", "columns": []}),
    ]
    assert [[s.name for s in g] for g in _groups(steps)] == [
        ["a", "b"],
        ["c"],
        ["d"],
        ["p"],
        ["e"],
        ["f"],
    ]
