"""What a researcher sees of a sandboxed job before review: a fixed vocabulary only
(tre/service/researcher_view.py). The e2e tests in tests/e2e/test_hostile.py run the
same channels through real jobs."""

from __future__ import annotations

import pytest

from jobs.spec import parse_spec
from tre.service.researcher_view import bounded_progress, researcher_reason

SPEC = parse_spec(
    {
        "project": "p",
        "title": "t",
        "datasets": {"residents": ["age_band"]},
        "steps": [{"kind": "python", "name": "main", "function": "code/leaky.py:main"}],
    }
)


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("ValueError", "ValueError"),
        ("ZeroDivisionError", "ZeroDivisionError"),
        ("ColumnNotFoundError", "ColumnNotFoundError"),
        ("Xsecret4242", "an error"),
        ("a.b.c", "an error"),
        ("", "an error"),
    ],
)
def test_only_an_allowed_exception_type_is_shown(kind, shown):
    reason = researcher_reason(SPEC, {"type": kind, "where": "", "reason": "data!"})
    assert reason.startswith(f"the job failed: {shown}. ")
    assert "data!" not in reason


@pytest.mark.parametrize(
    ("where", "at"),
    [
        ("main:12", " at line 12 of leaky.py"),
        ("secret_1234567890:12", " at line 12 of leaky.py"),  # the name is never shown
        ("leaky.py:99999", " at line 99999 of leaky.py"),
        ("leaky.py:100000", ""),  # past the limit: no line at all
        ("leaky.py:0", ""),
        ("nonsense", ""),
    ],
)
def test_a_line_of_the_submitted_file_is_shown_never_a_chosen_name(where, at):
    reason = researcher_reason(SPEC, {"type": "ValueError", "where": where})
    assert reason.startswith(f"the job failed: ValueError{at}. ")
    assert "secret" not in reason


def test_progress_is_bounded_by_the_parts_tre_planned():
    steps = ["a", "b", "c"]
    reported = {
        "steps": {
            "a": {"done": 424242, "total": 424242},
            "b": {"done": -7, "total": 3},
            "c": {"done": True, "total": 1},
            "secret_42": {"done": 1, "total": 1},
        }
    }
    shown = bounded_progress(steps, {"a": 3, "b": 3, "c": 1}, reported)
    assert shown == {
        "a": {"done": 3, "total": 3},
        "b": {"done": 0, "total": 3},
        "c": {"done": 0, "total": 1},
    }
    assert bounded_progress(steps, {}, {"steps": "nonsense"}) == {}


def _record(name: str, step: str, summary: str = "table 3x4 counts: all pass"):
    from tre.models import OutputRecord, SdcStatus

    return OutputRecord(
        name=name, kind="table", step=step, sdc_status=SdcStatus.PASS, summary=summary
    )


def test_only_declared_outputs_of_a_python_step_are_shown_with_their_declared_words():
    from tre.models import OutputRequest
    from tre.service.researcher_view import declared_only

    spec = parse_spec(
        {
            "project": "p",
            "title": "t",
            "datasets": {"residents": ["age_band"]},
            "steps": [
                {"kind": "table", "name": "plain", "dataset": "residents", "rows": ["age_band"]},
                {
                    "kind": "python",
                    "name": "main",
                    "function": "a.py:main",
                    "outputs": {"by_age": "Residents by age band.", "quiet": ""},
                },
            ],
        }
    )
    request = OutputRequest(
        job_id=1,
        project="p",
        author="rita",
        outputs=[
            _record("plain", "plain"),
            _record("by_age", "main", "table 8675309x1 counts"),
            _record("quiet", "main"),
            _record("secret_8675309", "main"),
            _record("another_one", "main"),
        ],
        report_json="",
        report_html="",
        report_markdown="",
    )
    shown, undeclared = declared_only(spec, request)
    assert undeclared == 2
    assert [(o.name, o.summary) for o in shown.outputs] == [
        ("plain", "table 3x4 counts: all pass"),  # tre's own step: as it is
        ("by_age", "Residents by age band."),  # never a summary of what the code shaped
        ("quiet", "declared in the job spec"),
    ]
    assert "8675309" not in shown.model_dump_json()


CATALOG = {"residents": ["age_band", "local_authority", "social_care_cost_gbp"]}


def _refused(column: str, dataset: str = "residents") -> str:
    error = {"type": "ColumnRefused", "where": "", "reason": "x", "dataset": dataset}
    return researcher_reason(SPEC, error | {"column": column}, CATALOG)


def test_a_refused_column_of_the_catalog_is_named_with_the_fix():
    said = _refused("social_care_cost_gbp")
    assert said.startswith("the job failed: ColumnRefused.")
    assert "It asked for column social_care_cost_gbp of residents, which the job spec" in said
    assert "add it under datasets.residents" in said


def test_a_column_the_dataset_lacks_is_never_named_only_matched_to_a_declared_one():
    said = _refused("age_bnd")
    assert "age_bnd" not in said
    assert "It asked for a column residents does not have. Did you mean age_band?" in said
    assert "secret" not in _refused("secret_1234") and "Did you mean" not in _refused("zzzz")


def test_a_refusal_naming_a_dataset_the_step_does_not_read_says_nothing_more():
    said = _refused("age_band", dataset="secret_dataset_name")
    assert "secret_dataset_name" not in said and "It asked" not in said


def test_a_missing_column_in_polars_lists_the_declared_columns():
    error = {"type": "ColumnNotFoundError", "where": "main:3", "reason": "col 'x9z'"}
    said = researcher_reason(SPEC, error, CATALOG)
    assert "The columns the step may read are residents: age_band." in said
    assert "x9z" not in said


@pytest.mark.parametrize(
    ("column", "built_at", "shown"),
    [
        ("age_bnd", "6", " Did you mean age_band? Your code names it at line 6 of leaky.py."),
        ("zz_secret_zz", "6", " Your code names it at line 6 of leaky.py."),
        ("age_bnd", "123456", " Did you mean age_band? The columns"),  # past the limit
        ("age_bnd", "6; data", " Did you mean age_band? The columns"),
    ],
)
def test_a_missing_column_suggests_a_declared_one_and_the_line_that_wrote_it(
    column, built_at, shown
):
    error = {"type": "ColumnNotFoundError", "where": "main:7", "column": column}
    said = researcher_reason(SPEC, {**error, "built_at": built_at}, CATALOG)
    assert shown in said
    assert column not in said and "; data" not in said


PEOPLE = parse_spec(
    {
        "project": "p",
        "title": "t",
        "datasets": {"residents": ["resident_id", "age_band"]},
        "steps": [{"kind": "python", "name": "main", "function": "code/leaky.py:main"}],
    }
)


def _keyed(column: str, dataset: str = "residents") -> str:
    error = {"type": "KeyedByIdentifier", "where": "main:4", "reason": "data!"}
    catalog = {"residents": ["resident_id", "age_band", "ward"]}
    return researcher_reason(PEOPLE, error | {"dataset": dataset, "column": column}, catalog)


def test_a_table_keyed_by_an_identifier_is_explained_in_tres_words():
    said = _keyed("resident_id")
    assert said.startswith("the job failed: KeyedByIdentifier at line 4 of leaky.py.")
    assert (
        "A table was keyed by resident_id, an identifier column of residents: a table keyed "
        "by an identifier publishes one row per person, so tre refuses it." in said
    )
    assert "pass resident_id as unit=, so that each person counts once" in said
    assert "data!" not in said


@pytest.mark.parametrize(
    ("column", "dataset"),
    [("secret_8675309", "residents"), ("ward", "residents"), ("resident_id", "secret_set")],
    ids=["not-in-catalog", "not-declared", "other-dataset"],
)
def test_an_identifier_refusal_names_only_a_declared_column_of_the_catalog(column, dataset):
    said = _keyed(column, dataset)
    assert "A table was keyed by an identifier: a table keyed by an identifier" in said
    assert "pass the identifier as unit=" in said
    assert f"keyed by {column}" not in said and f"pass {column}" not in said
    assert "secret" not in said


def test_a_refused_unit_gets_a_fixed_sentence():
    error = {"type": "UnitRefused", "where": "", "reason": "unit='secret_42' is not"}
    said = researcher_reason(PEOPLE, error)
    assert "A table's unit= was not an identifier column of the step's datasets" in said
    assert "secret" not in said
