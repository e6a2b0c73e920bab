"""Logistic regression's failures a researcher can act on: separation (complete and
quasi-complete) and a single outcome value are refused with tre's own words, and no numpy
error or warning escapes however far the coefficients run (jobs/logistic.py)."""

import warnings

import numpy as np
import polars as pl
import pytest

from jobs import logistic, regression
from jobs.errors import StepFailed
from jobs.regression_step import fit_in_memory
from jobs.spec import RegressionStep, parse_spec
from tre.service.researcher_view import researcher_reason


def step(**kw):
    base = {
        "kind": "regression",
        "name": "died_model",
        "dataset": "residents",
        "model": "logistic",
        "outcome": "died",
        "predictors": ["age"],
    }
    return RegressionStep.model_validate({**base, **kw})


@pytest.fixture(autouse=True)
def numpy_strict():
    """Every numpy warning is an error, and so is any overflow, invalid or divide (the
    old fit overflowed in exp and raised LinAlgError)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


def fails(s, frame):
    """The StepFailed the fit raises, as the researcher reads it."""
    with pytest.raises(StepFailed) as info:
        fit_in_memory(s, frame)
    return info.value.render()


def seen_by_researcher(s, reason):
    spec = parse_spec(
        {
            "project": "p",
            "title": "t",
            "datasets": {"residents": ["died", *s.predictors]},
            "steps": [s.model_dump(exclude_none=True)],
        }
    )
    return researcher_reason(spec, {"type": "StepFailed", "reason": reason})


def test_complete_separation_is_refused_naming_the_predictor():
    age = np.linspace(20.0, 90.0, 60)
    frame = pl.DataFrame({"age": age, "died": (age > 61.5).astype(int)})
    reason = fails(step(), frame)
    assert "the outcome 'died' is perfectly predicted by 'age'" in reason
    assert "(separation)" in reason
    assert "can itself disclose" in reason
    assert "merge small categories of the predictor, drop the predictor, or use a different" in (
        reason.replace("\n", " ")
    )
    # A regression step's reason is shown to the researcher as tre wrote it.
    assert seen_by_researcher(step(), reason) == reason


def test_complete_separation_by_a_combination_names_both_predictors():
    rng = np.random.default_rng(4)
    age, visits = rng.uniform(20, 90, 80), rng.uniform(0, 30, 80)
    frame = pl.DataFrame(
        {"age": age, "visits": visits, "died": (age + 2 * visits > 90).astype(int)}
    )
    reason = fails(step(predictors=["age", "visits"]), frame)
    assert "perfectly predicted by 'age' and 'visits'" in reason


def test_quasi_separation_by_a_category_is_refused_naming_only_it():
    rng = np.random.default_rng(5)
    n = 300
    band = rng.choice(["18-64", "65-84", "85+"], n)
    age = rng.normal(60, 10, n)
    # Everyone in 85+ died; the other bands overlap.
    died = np.where(band == "85+", 1, (rng.random(n) < 0.3).astype(int))
    frame = pl.DataFrame({"age": age, "band": band, "died": died})
    s = step(predictors=["age", "band"], categorical=["band"])
    reason = fails(s, frame)
    assert "is perfectly predicted for some of its rows (almost perfectly predicted) by 'band'" in (
        reason.replace("\n", " ")
    )
    assert "'age'" not in reason
    assert "85+" not in reason  # a level is the data's, never tre's words


def test_one_person_marked_by_an_indicator_is_quasi_separation():
    # The example as a logistic model: one diabetic, who died.
    rng = np.random.default_rng(6)
    n = 400
    diabetes = np.zeros(n, dtype=int)
    diabetes[17] = 1
    died = (rng.random(n) < 0.2).astype(int)
    died[17] = 1
    frame = pl.DataFrame({"age": rng.normal(60, 10, n), "has_diabetes": diabetes, "died": died})
    reason = fails(step(predictors=["age", "has_diabetes"]), frame)
    assert "almost perfectly predicted) by 'has_diabetes'" in reason.replace("\n", " ")


def test_separation_is_found_from_fragments_as_from_the_whole():
    age = np.linspace(20.0, 90.0, 90)
    frame = pl.DataFrame({"age": age, "died": (age > 50).astype(int)})
    s = step()
    designs = [regression.build_design(frame.slice(i, 30), s, {}) for i in range(0, 90, 30)]

    def evaluate(beta, directions):
        return regression.combine([logistic.logistic_partial(d, beta, directions) for d in designs])

    with pytest.raises(StepFailed, match="perfectly predicted by 'age'"):
        logistic.fit_logistic(evaluate, designs[0].terms, s)


@pytest.mark.parametrize("value", [0, 1])
def test_a_single_outcome_value_is_refused_before_fitting_without_saying_which(value):
    frame = pl.DataFrame({"age": np.linspace(20.0, 90.0, 30), "died": [value] * 30})
    reason = fails(step(), frame)
    assert reason.startswith(
        "step 'died_model': the outcome 'died' has the same value in every row fitted "
        "(all 0 or all 1), so a logistic regression has nothing to estimate"
    )
    # Both cases read the same, so the refusal does not say which value everyone has.
    other = pl.DataFrame({"age": frame["age"], "died": [1 - value] * 30})
    assert fails(step(), other) == reason


def test_a_strong_predictor_whose_outcomes_overlap_is_fitted():
    rng = np.random.default_rng(7)
    age = rng.normal(60, 10, 500)
    # Above 70 everyone died, below it some did: the outcomes overlap, so a finite fit exists.
    died = np.where(age > 70, 1, (rng.random(500) < 0.3).astype(int))
    out = fit_in_memory(step(), pl.DataFrame({"age": age, "died": died}))
    assert out.fit["converged"]
    assert np.all(np.isfinite(out.coefficients["std_error"].to_numpy()))


def test_probes_are_scaled_to_move_a_typical_row_by_one():
    scale = np.array([1.0, 10.0])
    probes = logistic.probe(np.array([[2.0, 0.5], [0.0, 0.0]]), scale)
    assert probes[0] == pytest.approx([0.4, 0.1])
    assert probes[1].tolist() == [0.0, 0.0]  # no direction stays none
