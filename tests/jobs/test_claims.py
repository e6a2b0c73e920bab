"""What researcher code wrote into result.json is checked before anything reads it
(jobs/claims.py): what tre itself writes passes; the hostile cases through the door
are in test_handover.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.claims import check_result_claims
from jobs.outputs import RegressionOutput, TableOutput
from jobs.python_step import StepContext
from jobs.results import write_results
from jobs.untrusted import UntrustedOutput
from tests.jobs import people


def _written(tmp_path: Path) -> Path:
    """What ctx.table and ctx.regression write, in free mode, for real."""
    ctx = StepContext("mine", {"residents": people.source()}, {"residents": people.COLUMNS})
    frame = people.people(200)
    ctx.table("by_sex", frame, rows=["sex"], columns=["age_band"])
    ctx.table("q", frame, rows=["sex"], value="ltc_count", statistic="quantile", quantile=0.9)
    ctx.regression("ols", frame, outcome="ltc_count", predictors=["sex"], categorical=["sex"])
    assert isinstance(ctx.outputs[0], TableOutput)
    assert isinstance(ctx.outputs[2], RegressionOutput)
    write_results(tmp_path, ctx.outputs, {})
    return tmp_path


def test_what_tre_writes_passes(tmp_path):
    check_result_claims(_written(tmp_path))


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[" * 200_000, "not JSON"),
        ('{"outputs": ["x"]}', "no list of outputs"),
        ("[]", "no list of outputs"),
    ],
)
def test_a_result_that_is_not_a_document_of_outputs_is_refused(tmp_path, text, said):
    (_written(tmp_path) / "result" / "result.json").write_text(text)
    with pytest.raises(UntrustedOutput, match=said):
        check_result_claims(tmp_path)


def test_a_count_the_code_wrote_as_text_is_refused(tmp_path):
    path = _written(tmp_path) / "result" / "result.json"
    document = json.loads(path.read_text())
    (regression,) = [e for e in document["outputs"] if e["kind"] == "regression"]
    regression["level_counts"] = {"sex": {"F": "3", "M": 197}}
    path.write_text(json.dumps(document))
    with pytest.raises(UntrustedOutput, match="regression ols's level_counts holds something"):
        check_result_claims(tmp_path)
