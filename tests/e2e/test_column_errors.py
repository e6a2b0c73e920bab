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
