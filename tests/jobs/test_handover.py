"""The one door between a job's two sandboxes (jobs/handover.py): what the python
steps' phase left is read as untrusted, and only what a python step may hand over
gets through."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
import yaml

from jobs.errors import StepFailed
from jobs.handover import read_handover
from jobs.outputs import FileOutput, RegressionOutput, TableOutput
from jobs.results import write_error, write_results
from jobs.spec import parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "jobs" / "examples"


@pytest.fixture
def spec():
    data = yaml.safe_load((EXAMPLES / "health_by_area.yaml").read_text())
    data["steps"].append({"kind": "python", "name": "mine", "function": "x.py:f"})
    return parse_spec(data, as_written=False)


def _outputs(step: str = "mine"):
    table = TableOutput(
        name="by_sex",
        step=step,
        description="",
        datasets=["residents"],
        rows=["sex"],
        columns=[],
        value=None,
        statistic="count",
        quantile=None,
        cells=pl.DataFrame({"sex": ["F", "M"], "n": [12, 14]}),
    )
    note = FileOutput(name="note", step=step, description="", filename="n.md", content=b"hi")
    return [table, note]


def _scratch(tmp_path: Path) -> Path:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return scratch


def test_what_a_python_step_made_gets_through(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, _outputs(), {"job_id": 1})
    received = read_handover(handover, spec, _scratch(tmp_path))
    assert received.error is None
    table, note = received.outputs["mine"]
    assert table.cells.to_dict(as_series=False) == {"sex": ["F", "M"], "n": [12, 14]}
    assert note.content == b"hi"


def _tamper(handover: Path, change) -> None:
    path = handover / "result" / "result.json"
    document = json.loads(path.read_text())
    change(document["outputs"])
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda o: o[1].update(data="../../input.json"), "not where an output's data goes"),
        (lambda o: o[0].update(step="residents_by_area"), "not a python step"),
        (lambda o: o[0].update(name="../x"), "name is not allowed"),
        (lambda o: o[1].update(filename="../../etc"), "file name that is not allowed"),
        (lambda o: o[0].update(kind="secret"), "unknown kind"),
    ],
)
def test_an_entry_the_code_shaped_is_refused(tmp_path, spec, change, said):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, _outputs(), {})
    _tamper(handover, change)
    with pytest.raises(StepFailed, match=said):
        read_handover(handover, spec, _scratch(tmp_path))


def test_a_link_is_refused_never_followed(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, _outputs(), {})
    target = handover / "result" / "files" / "note" / "n.md"
    target.unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("the engine's own file")
    os.symlink(secret, target)
    with pytest.raises(StepFailed, match="link"):
        read_handover(handover, spec, _scratch(tmp_path))


def test_the_codes_failure_is_passed_on_bounded(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_error(handover, "x" * 10_000, {"type": "ValueError" * 100, "where": "a.py:3"})
    received = read_handover(handover, spec, _scratch(tmp_path))
    assert received.error is not None
    assert len(received.error["reason"]) == 4000
    assert len(received.error["type"]) == 200 and received.error["where"] == "a.py:3"


def test_nothing_handed_over_is_said_in_tres_words(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    with pytest.raises(StepFailed, match="ended without handing over"):
        read_handover(handover, spec, _scratch(tmp_path))


def _regression(step: str = "mine") -> RegressionOutput:
    return RegressionOutput(
        name="visits",
        step=step,
        description="",
        datasets=["residents"],
        model="logistic",
        outcome="has_copd",
        n_obs=400,
        df_resid=396,
        coefficients=pl.DataFrame(
            {
                "term": ["intercept", "sex[M]"],
                "estimate": [0.1, 0.2],
                "std_error": [0.01, 0.02],
                "statistic": [10.0, 10.0],
                "p_value": [0.0, 0.0],
            }
        ),
        level_counts={"sex": {"F": 210, "M": 190}},
        value_counts={"has_diabetes": {"0": 380, "1": 20}},
        fit={"converged": True, "deviance": float("nan"), "outcome_counts": {"0": 300, "1": 100}},
    )


def _hand_over(tmp_path: Path, change) -> Path:
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, [*_outputs(), _regression()], {})
    _tamper(handover, change)
    return handover


def test_a_regressions_counts_as_tre_writes_them_get_through(tmp_path, spec):
    received = read_handover(_hand_over(tmp_path, lambda o: None), spec, _scratch(tmp_path))
    regression = received.outputs["mine"][2]
    assert isinstance(regression, RegressionOutput)
    assert regression.level_counts == {"sex": {"F": 210, "M": 190}}
    assert regression.value_counts == {"has_diabetes": {"0": 380, "1": 20}}


def _set(field: str, value: object):
    return lambda o: o[2].update({field: value})


COUNTS_REFUSED = "holds something other than a whole number of observations"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        # a count as text: read as 5 by checking, so a small cell would pass as large
        (_set("level_counts", {"sex": {"F": "5", "M": 395}}), COUNTS_REFUSED),
        (_set("value_counts", {"has_diabetes": {"0": 399, "1": -1}}), COUNTS_REFUSED),
        (_set("value_counts", {"has_diabetes": {"0": 399, "1": 0.5}}), COUNTS_REFUSED),
        (_set("level_counts", {"sex": {"F": float("nan"), "M": 1}}), COUNTS_REFUSED),
        (_set("level_counts", {"sex": {"F": float("inf"), "M": 1}}), COUNTS_REFUSED),
        (_set("level_counts", {"sex": {"F": True, "M": 1}}), COUNTS_REFUSED),
        (_set("level_counts", {"sex": {"F": 10**30, "M": 1}}), COUNTS_REFUSED),
        (_set("level_counts", {"sex": {"F": {"deeper": 1}}}), COUNTS_REFUSED),
        (_set("level_counts", {"sex": [1, 2]}), "not a mapping of levels to counts"),
        (_set("level_counts", "sex: 5"), "level_counts is not a mapping of predictors"),
        (_set("value_counts", [1]), "value_counts is not a mapping of predictors"),
        (_set("level_counts", None), "level_counts is not a mapping of predictors"),
        (
            _set("level_counts", {"sex": {str(i): 20 for i in range(10_001)}}),
            "over 10,000 levels",
        ),
        # a predictor claimed to have many values escapes the few-values check: refused
        (
            _set("value_counts", {"has_diabetes": {str(i): 20 for i in range(21)}}),
            "over 20 levels",
        ),
        (_set("level_counts", {f"p{i}": {"a": 20} for i in range(1001)}), "over 1,000 predictors"),
        (_set("n_obs", -3), "n_obs holds something other than a whole number"),
        (_set("df_resid", "396"), "df_resid holds something other than a whole number"),
        (_set("model", "magic"), "model is not one of ols, logistic"),
        (_set("fit", {"r": {"deep": {"deeper": 1}}}), "fit is not text"),
        (_set("fit", [1]), "fit is not a mapping"),
        (lambda o: o[0].update(rows=[{"x": 1}]), "rows is not text"),
        (lambda o: o[0].update(statistic="count; drop"), "statistic is not one tre computes"),
        (lambda o: o[0].update(quantile=float("nan")), "quantile is not a number"),
        (lambda o: o[0].update(unit=7), "unit is not text"),
        (lambda o: o[0].update(description=["x"]), "description is not text"),
    ],
)
def test_evidence_the_code_shaped_is_refused_in_tres_words(tmp_path, spec, change, said):
    handover = _hand_over(tmp_path, change)
    with pytest.raises(StepFailed, match=said) as refused:
        read_handover(handover, spec, _scratch(tmp_path))
    assert refused.value.message.startswith("the python steps handed over something tre refuses")


def test_a_result_nested_past_pythons_limit_is_refused_not_a_crash(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, _outputs(), {})
    (handover / "result" / "result.json").write_text("[" * 200_000)
    with pytest.raises(StepFailed, match="not JSON"):
        read_handover(handover, spec, _scratch(tmp_path))


def test_an_error_nested_past_pythons_limit_is_the_step_failing(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    (handover / "error.json").write_text('{"reason": ' + "[" * 200_000)
    received = read_handover(handover, spec, _scratch(tmp_path))
    assert received.error == {"reason": "the python step failed"}
