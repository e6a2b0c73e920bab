"""A python step's column mistakes reach the researcher in tre's words, never in the
code's: run for real, in the sandbox, and read back with `tre status`."""

from __future__ import annotations

import textwrap

import pytest

from tests.e2e.test_hostile import _job, _python_job, _run
from tre.models import JobState

pytestmark = pytest.mark.slow

ASKS = textwrap.dedent("""
    def asks(ctx):
        frame = ctx.dataset("residents", columns=["local_authority", COLUMN])
        ctx.table("by_area", frame, rows=["local_authority"])
""")


@pytest.mark.parametrize(
    ("column", "shown"),
    [
        (
            "social_care_cost_gbp",
            "It asked for column social_care_cost_gbp of residents, which the job spec does "
            "not declare: add it under datasets.residents",
        ),
        ("local_authorty", "residents does not have. Did you mean local_authority?"),
    ],
)
def test_an_undeclared_or_mistyped_column_is_named_by_tre(cli, home, tmp_path, column, shown):
    spec = _python_job(tmp_path, "asks", ASKS.replace("COLUMN", repr(column)), ["local_authority"])
    job_id = _run(cli, spec)
    assert _job(home, job_id).state is JobState.FAILED
    status = cli("status", job_id, who="rita")
    assert status.code == 0, status.err
    said = " ".join(status.out.split())
    assert "ColumnRefused at line 3 of asks.py" in said
    assert shown in said
    assert "local_authorty" not in said


TYPO = textwrap.dedent("""
    import polars as pl

    def typo(ctx):
        frame = ctx.dataset("residents")
        older = frame.filter(pl.col("age_bnd") != "0-15")
        ctx.table("by_area", older, rows=["local_authority"])
""")


def test_a_typo_in_an_expression_names_the_line_that_wrote_it(cli, home, tmp_path):
    spec = _python_job(tmp_path, "typo", TYPO, ["local_authority", "age_band"])
    job_id = _run(cli, spec)
    assert _job(home, job_id).state is JobState.FAILED
    said = " ".join(cli("status", job_id, who="rita").out.split())
    # polars fails at ctx.table (line 7), but the mistake is on line 6.
    assert "ColumnNotFoundError at line 7 of typo.py" in said
    assert "Did you mean age_band? Your code names it at line 6 of typo.py." in said
    assert "age_bnd" not in said  # the code's own word is never shown
