"""Finding the line of the submitted code that names a column (jobs/code_lines.py)."""

from __future__ import annotations

import cloudpickle

from jobs.code_lines import line_naming, missing_column

SOURCE = """\
import polars as pl

def helper(frame):
    return frame.select(pl.col("in_helper"))

def step(ctx):
    frame = ctx.dataset("residents")
    frame = frame.filter(pl.col("agee") > 3)
    ctx.table("t", helper(frame), rows=["age_band", "sex"])
"""


def _pickled() -> dict[str, bytes]:
    namespace: dict[str, object] = {}
    exec(compile(SOURCE, "step.py", "exec"), namespace)
    return {"step": cloudpickle.dumps(namespace["step"])}


def test_the_line_that_wrote_a_column_is_found_in_the_submitted_code():
    pickles = _pickled()
    assert line_naming(pickles, "agee") == 8
    assert line_naming(pickles, "sex") == 9  # in a list of names
    assert line_naming(pickles, "in_helper") == 4  # in a function the step calls
    assert line_naming(pickles, "nowhere") is None


def test_a_pickle_that_does_not_load_has_no_line():
    assert line_naming({"step": b"not a pickle"}, "agee") is None


def test_polars_missing_column_is_read_only_when_it_is_a_column_name():
    assert missing_column('unable to find column "agee"; valid columns: ["age"]') == "agee"
    assert missing_column('unable to find column "a b"; valid columns') is None
    assert missing_column("something else") is None
