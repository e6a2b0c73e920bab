"""Plan mode's engine side (jobs/plan_outputs.py): a python step's table computed again
by tre's engine, on its own copy of real secured data, counting people, never records.

The code's side runs in-process here (`StepContext` with a folder for its plans), as
`run_python_step` runs it in the job's sandbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
import pytest

from jobs.errors import KeyedByIdentifier
from jobs.outputs import TableOutput
from jobs.plan_outputs import recompute
from jobs.python_step import StepContext
from tests.jobs import people
from tests.tre.keys.fixtures import *  # noqa: F403  keys_root, grant_token and their kin
from tests.tre.keys.fixtures import Grant
from tre.secured.reader import SecuredSource

Sources = Callable[[Sequence[str]], dict[str, SecuredSource]]


@pytest.fixture
def residents(tmp_path: Path, keys_root: Path, grant_token: Grant) -> Sources:
    """24 residents, secured as a real dataset (4 in each age band and sex); the sources
    of a job granted some of its columns."""
    data_root = tmp_path / "home" / "data"
    data_root.mkdir(mode=0o700)
    dataset = people.ingested(
        people.people(24), keys_root=keys_root, data_root=data_root, folder=tmp_path
    )

    def sources(granted: Sequence[str]) -> dict[str, SecuredSource]:
        source = SecuredSource.from_dataset(
            data_root=data_root,
            keys_root=keys_root,
            dataset=dataset,
            granted=granted,
            token=grant_token("residents", granted),
        )
        return {"residents": source}

    return sources


Build = Callable[[StepContext, pl.LazyFrame], None]


def _code_then_engine(
    tmp_path: Path, sources: dict[str, SecuredSource], build: Build
) -> TableOutput:
    """Run `build` (the code's ctx.table on the dataset it read) as the code's phase
    does, then the engine's recomputation of that table from the plan handed over."""
    declared = {"residents": list(sources["residents"].granted)}
    (tmp_path / "code").mkdir()
    ctx = StepContext("mine", sources, declared, files=tmp_path / "code")
    build(ctx, ctx.dataset("residents"))
    (output,) = ctx.outputs
    assert output.plan is not None and not output.plan_refused
    return recompute(output, sources, declared, tmp_path / "engine", top_k=2)


def _inner(output: TableOutput) -> pl.DataFrame:
    return output.cells.filter(pl.col("margin") == "")


@pytest.mark.parametrize(
    ("granted", "counted_by"),
    [(people.COLUMNS, "resident_id"), (["age_band", "sex"], None)],
    ids=["by-resident", "by-row"],
)
def test_each_persons_row_ten_times_counts_each_person_once_in_the_engine(
    tmp_path, residents, granted, counted_by
):
    def ten_times(ctx: StepContext, frame: pl.LazyFrame) -> None:
        ctx.table("by_band", pl.concat([frame] * 10), rows=["age_band"], columns=["sex"])

    output = _code_then_engine(tmp_path, residents(granted), ten_times)
    # The declared unit when the job may read it, else each row's place in the data.
    assert output.evidence == "engine" and output.unit == counted_by
    assert set(_inner(output)["n"]) == {4}  # not the 40 records the plan makes
    assert people.checked(output).check_status == "fail"


def test_a_frame_over_enough_distinct_residents_passes_in_the_engine(tmp_path, residents):
    def by_sex(ctx: StepContext, frame: pl.LazyFrame) -> None:
        ctx.table("by_sex", pl.concat([frame] * 3), rows=["sex"])

    output = _code_then_engine(tmp_path, residents(people.COLUMNS), by_sex)
    assert set(_inner(output)["n"]) == {12} and set(_inner(output)["records"]) == {36}
    assert people.checked(output).check_status == "pass"


def test_a_plan_keyed_by_an_identifier_is_refused_before_it_is_handed_over(tmp_path, residents):
    sources = residents(people.COLUMNS)
    (tmp_path / "code").mkdir()
    ctx = StepContext("mine", sources, {"residents": people.COLUMNS}, files=tmp_path / "code")
    frame = pl.concat([ctx.dataset("residents")] * 10)
    with pytest.raises(KeyedByIdentifier, match=r"resident_id \(.*\) is one of its keys"):
        ctx.table("per_person", frame, rows=["resident_id", "age_band", "sex", "ltc_count"])
    assert ctx.outputs == []


def test_a_renamed_identifier_as_key_is_still_one_person_a_cell_in_the_engine(tmp_path, residents):
    def renamed(ctx: StepContext, frame: pl.LazyFrame) -> None:
        who = frame.with_columns(pl.col("resident_id").alias("who")).select("who")
        ctx.table("per_person", pl.concat([who] * 10), rows=["who"])

    engine = _code_then_engine(tmp_path, residents(people.COLUMNS), renamed)
    assert set(_inner(engine)["n"]) == {1}  # each "who" is one resident, ten times over
    assert people.checked(engine).check_status == "fail"
