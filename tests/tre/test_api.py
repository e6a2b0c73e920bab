"""The notebook API: tre.submit(fn, project=..., datasets=...)."""

import pytest

import tre
from jobs.errors import SpecError
from tests.conftest import PROJECT
from tre.errors import PermissionDenied
from tre.service.review import show
from tre.service.session import Session


def by_authority(ctx):
    residents = ctx.dataset("residents")
    ctx.table("by_authority", residents, rows=["local_authority"])


@pytest.mark.slow
def test_submit_a_function_and_run_it_to_review(home):
    job = tre.submit(
        by_authority,
        project=PROJECT,
        datasets={"residents": ["local_authority"]},
        home=home,
        acting_as="rita",
        run=True,
        resources={"workers": 1, "memory": "1GiB"},
    )
    assert job.wait(timeout=5) == "awaiting_review", job.reason
    s = Session.open(home, "carl")
    view = show(s, job.id)
    s.close()
    assert [o.name for o in view.request.outputs] == ["by_authority"]
    assert view.job.code_hash  # the pickled function is hashed into the job record


def test_a_column_outside_the_approval_is_refused_before_anything_runs(home):
    with pytest.raises(PermissionDenied, match="was refused") as info:
        tre.submit(
            by_authority,
            project=PROJECT,
            datasets={"residents": ["ward"]},
            home=home,
            acting_as="rita",
        )
    assert any("ward" in r for r in info.value.reasons)


def test_bad_arguments_are_explained(home):
    with pytest.raises(SpecError, match=r"resources\.memory"):
        tre.submit(
            by_authority,
            project=PROJECT,
            datasets={"residents": ["local_authority"]},
            home=home,
            acting_as="rita",
            resources={"memory": "a lot"},
        )
