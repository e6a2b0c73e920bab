"""Plan mode's allow-list (jobs/plans.py): which LazyFrame plans tre's engine runs again,
and that it runs them on its own copy of the data."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from jobs import plans
from jobs.plans import UNIT

DECLARED = {"residents": ["age", "area", "cost"]}


@pytest.fixture
def scanned(tmp_path: Path):
    columns = ["age", "area", "cost"]
    path = plans.scan_file(tmp_path / "code", "residents", columns)
    path.parent.mkdir()
    pl.DataFrame({"age": [30, 70], "area": ["A", "B"], "cost": [1.0, 2.0]}).write_ipc(path)
    return pl.scan_ipc(path), {path.name: columns}


def test_a_plan_of_filters_and_new_columns_runs_on_the_engines_own_copy(scanned, tmp_path):
    frame, asked = scanned
    plan = plans.to_json(
        frame.filter(pl.col("age") > 40)
        .with_columns(
            pl.when(pl.col("cost") > 1).then(pl.lit("hi")).otherwise(pl.lit("lo")).alias("band")
        )
        .select(["area", "band"])
    )
    files = plans.check(plan, DECLARED, asked)
    (name,) = files
    assert files[name] == ("residents", ["age", "area", "cost"])
    engine = tmp_path / "engine.arrow"  # different rows: the engine's data, not the code's
    pl.DataFrame(
        {"age": [50, 60, 20], "area": ["C", "D", "E"], "cost": [5.0, 0.5, 9.0], UNIT: [7, 8, 9]}
    ).write_ipc(engine)
    assert plans.run(plan, {name: engine}).to_dict(as_series=False) == {
        "area": ["C", "D"],
        "band": ["hi", "lo"],
        UNIT: [7, 8],  # kept by the selection, though the plan did not name it
    }


def test_ten_copies_of_every_row_keep_each_rows_unit(scanned, tmp_path):
    frame, asked = scanned
    copies = [frame.with_columns(pl.lit(k).alias("copy")) for k in range(10)]
    plan = plans.to_json(pl.concat(copies).select(["area", "copy"]).rename({"area": "where"}))
    (name,) = plans.check(plan, DECLARED, asked)
    engine = tmp_path / "engine.arrow"
    pl.DataFrame({"age": [50, 60], "area": ["C", "D"], "cost": [5.0, 0.5], UNIT: [7, 8]}).write_ipc(
        engine
    )
    ran = plans.run(plan, {name: engine})
    assert ran.columns == ["where", "copy", UNIT]
    assert ran.height == 20
    assert ran.group_by("where").agg(pl.col(UNIT).n_unique()).sort("where").rows() == [
        ("C", 1),
        ("D", 1),
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda f: f.select(pl.col(UNIT)),
        lambda f: f.with_columns(pl.lit(1).alias(UNIT)),
        lambda f: f.rename({"age": UNIT}),
    ],
    ids=["select", "overwrite", "rename"],
)
def test_a_plan_naming_the_engines_unit_column_is_refused(scanned, build):
    frame, asked = scanned
    with pytest.raises(plans.PlanRefused, match="a column tre keeps for itself"):
        plans.check(plans.to_json(build(frame)), DECLARED, asked)


def test_a_schema_the_plan_cached_is_dropped_not_refused(scanned):
    frame, asked = scanned
    frame.collect_schema()
    frame.group_by("area").len().collect()
    assert plans.check(plans.to_json(frame), DECLARED, asked)


@pytest.mark.parametrize(
    "build",
    [
        lambda f: f.with_columns(pl.col("age").map_elements(lambda x: x, return_dtype=pl.Int64)),
        lambda f: f.group_by("area").len(),
        lambda f: f.join(f, on="area"),
        lambda f: f.explode("area"),
        lambda f: f.head(1),
        lambda f: pl.LazyFrame({"age": [1]}),
        # selectors could reach the engine's unit column without naming it
        lambda f: f.select(pl.all()),
        lambda f: f.with_columns(pl.all().cast(pl.String)),
        lambda f: f.select(pl.col("^a.*$")),
        lambda f: f.drop("age"),
    ],
    ids=[
        "udf",
        "aggregation",
        "join",
        "explode",
        "slice",
        "in-memory",
        "all",
        "all-cast",
        "regex",
        "drop",
    ],
)
def test_what_could_run_code_or_count_a_row_twice_is_refused(scanned, build):
    frame, asked = scanned
    refused = r"uses what plan mode does not run: .+ \(plan mode runs|reads no dataset"
    with pytest.raises(plans.PlanRefused, match=refused):
        plans.check(plans.to_json(build(frame)), DECLARED, asked)


def test_a_scan_of_a_file_ctx_dataset_did_not_make_is_refused(scanned, tmp_path):
    frame, asked = scanned
    other = tmp_path / "secret.arrow"
    pl.DataFrame({"age": [1]}).write_ipc(other)
    for plan, recorded in [
        (plans.to_json(pl.scan_ipc(other)), asked),
        (plans.to_json(frame), {}),  # its columns were not recorded
        (plans.to_json(frame), {next(iter(asked)): ["age", "area", "cost", "nhs_number"]}),
    ]:
        with pytest.raises(plans.PlanRefused, match=r"a file ctx\.dataset did not make"):
            plans.check(plan, DECLARED, recorded)


def test_a_crafted_plan_naming_python_is_refused_before_polars_reads_it(scanned):
    frame, asked = scanned
    tree = json.loads(plans.to_json(frame))
    tree = {"MapFunction": {"input": tree, "function": {"OpaquePython": {"python": [1, 2]}}}}
    with pytest.raises(plans.PlanRefused):
        plans.check(json.dumps(tree), DECLARED, asked)
    with pytest.raises(plans.PlanRefused, match="not a polars plan"):
        plans.check("{not json", DECLARED, asked)
