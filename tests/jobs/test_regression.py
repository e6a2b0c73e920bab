import numpy as np
import polars as pl
import pytest

from jobs import regression
from jobs.errors import StepFailed
from jobs.regression_step import fit_in_memory
from jobs.spec import RegressionStep


def step(**kw):
    base = {
        "kind": "regression",
        "name": "r",
        "dataset": "d",
        "outcome": "y",
        "predictors": ["x", "g"],
        "categorical": ["g"],
    }
    return RegressionStep.model_validate({**base, **kw})


@pytest.fixture
def frame():
    rng = np.random.default_rng(1)
    n = 600
    g = rng.choice(["a", "b", "c"], n)
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x + np.select([g == "b", g == "c"], [0.5, -1.0], 0.0) + rng.normal(0, 0.3, n)
    return pl.DataFrame({"x": x, "g": g, "y": y})


def test_ols_matches_numpy_least_squares(frame):
    out = fit_in_memory(step(), frame)
    g = frame["g"].to_numpy()
    x = np.column_stack([np.ones(frame.height), frame["x"].to_numpy(), g == "b", g == "c"])
    beta, *_ = np.linalg.lstsq(x.astype(float), frame["y"].to_numpy(), rcond=None)
    assert out.coefficients["term"].to_list() == ["(intercept)", "x", "g[b]", "g[c]"]
    assert np.allclose(out.coefficients["estimate"].to_numpy(), beta)
    assert out.df_resid == frame.height - 4
    assert out.level_counts["g"] == {k: int((g == k).sum()) for k in "abc"}


def test_pieces_from_fragments_give_the_same_fit_as_the_whole(frame):
    s = step()
    levels = regression.union_levels([regression.levels_of(frame, s.categorical)])
    parts = [
        regression.ols_partial(regression.build_design(frame.slice(i, 200), s, levels))
        for i in range(0, 600, 200)
    ]
    split = regression.solve_ols(regression.combine(parts), regression.terms_for(s, levels), s)
    whole = fit_in_memory(s, frame)
    assert np.allclose(
        split["coefficients"]["std_error"].to_numpy(), whole.coefficients["std_error"].to_numpy()
    )


def test_logistic_recovers_known_coefficients():
    rng = np.random.default_rng(2)
    n = 4000
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(-0.5 + 1.5 * x)))
    y = (rng.random(n) < p).astype(int)
    out = fit_in_memory(
        step(model="logistic", predictors=["x"], categorical=[]), pl.DataFrame({"x": x, "y": y})
    )
    est = dict(zip(out.coefficients["term"], out.coefficients["estimate"], strict=True))
    assert est["x"] == pytest.approx(1.5, abs=0.15)
    assert est["(intercept)"] == pytest.approx(-0.5, abs=0.15)
    assert out.fit["converged"]


def test_logistic_outcome_must_be_binary_and_the_error_shows_no_values(frame):
    with pytest.raises(StepFailed, match="0/1") as info:
        fit_in_memory(step(model="logistic"), frame)
    assert str(frame["y"][0])[:6] not in info.value.render()


def test_collinear_predictors_are_explained():
    frame = pl.DataFrame({"x": [1.0, 2, 3, 4, 5], "z": [2.0, 4, 6, 8, 10], "y": [1.0, 2, 2, 4, 5]})
    with pytest.raises(StepFailed, match="collinear"):
        fit_in_memory(step(predictors=["x", "z"], categorical=[]), frame)


def test_text_predictor_not_declared_categorical(frame):
    with pytest.raises(StepFailed, match="categorical"):
        fit_in_memory(step(categorical=[]), frame)


def test_rows_with_missing_values_are_dropped_and_counted():
    frame = pl.DataFrame({"x": [1.0, 2, None, 4, 5, 6], "y": [1.0, 2.1, 3, None, 5.2, 5.9]})
    out = fit_in_memory(step(predictors=["x"], categorical=[]), frame)
    assert out.n_obs == 4
    assert out.fit["dropped_rows"] == 2
