import numpy as np
import polars as pl
import pytest

from disclosure import Rules, check_regression
from disclosure.validate import MAX_FEW_VALUES
from jobs import regression
from jobs.errors import StepFailed
from jobs.regression_step import fit_in_memory
from jobs.results import read_results, write_results
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


def test_values_of_numeric_predictors_with_few_values_are_counted_as_evidence():
    rng = np.random.default_rng(3)
    n = 300
    diabetes = np.zeros(n, dtype=int)
    diabetes[5] = 1
    frame = pl.DataFrame(
        {
            "has_diabetes": diabetes,
            "smoker": rng.random(n) < 0.3,
            "age": rng.normal(60, 10, n),  # continuous: not counted
            "deciles": np.arange(n) % (MAX_FEW_VALUES + 1),  # too many to count
            "y": rng.normal(5, 2, n),
        }
    )
    s = step(predictors=["has_diabetes", "smoker", "age", "deciles"], categorical=[])
    out = fit_in_memory(s, frame)
    smokers = int(frame["smoker"].sum())
    assert out.value_counts == {
        "has_diabetes": {"0": n - 1, "1": 1},
        "smoker": {"False": n - smokers, "True": smokers},
    }


def test_value_counts_merge_across_fragments_and_stop_past_the_limit():
    values = np.arange(300) % 3
    frame = pl.DataFrame(
        {"few": values, "many": np.arange(300) // 10, "y": np.arange(300) * 0.1 % 7}
    )
    s = step(predictors=["few", "many"], categorical=[])
    parts = [
        regression.ols_partial(regression.build_design(frame.slice(i, 100), s, {}))
        for i in range(0, 300, 100)
    ]
    # Each fragment of "many" holds 10 values, so each counts them; together they are 30.
    assert all(p["value_counts"]["many"] is not None for p in parts)
    # A fragment its filters left empty counts nothing, and stops nothing.
    parts.insert(0, regression.ols_partial(regression.build_design(frame.clear(), s, {})))
    total = regression.combine(parts)
    assert total["value_counts"] == {"few": {"0": 100, "1": 100, "2": 100}, "many": None}
    fitted = regression.solve_ols(total, regression.terms_for(s, {}), s)
    assert fitted["value_counts"] == {"few": {"0": 100, "1": 100, "2": 100}}


def test_a_binary_predictor_marking_one_person_fails_disclosure_control():
    # The example: gp_visits ~ has_diabetes, one diabetic person in the cell. The
    # intercept plus the coefficient is that person's number of visits.
    rng = np.random.default_rng(8)
    n = 200
    diabetes = np.zeros(n, dtype=int)
    diabetes[42] = 1
    visits = rng.poisson(4, n).astype(float)
    frame = pl.DataFrame({"has_diabetes": diabetes, "gp_visits": visits})
    out = fit_in_memory(
        step(outcome="gp_visits", predictors=["has_diabetes"], categorical=[]), frame
    )
    est = out.coefficients["estimate"].to_list()
    assert est[0] + est[1] == pytest.approx(visits[42])  # what the rule must stop
    result = check_regression(
        name=out.name,
        model=out.model,
        n_obs=out.n_obs,
        df_resid=out.df_resid,
        coefficients=out.coefficients,
        rules=Rules(),
        level_counts=out.level_counts,
        value_counts=out.value_counts,
    )
    assert result.status == "fail"
    assert result.reasons == [
        "value 1 of has_diabetes has 1 observation, below the threshold of 10: has_diabetes "
        "has only 2 distinct values, so its coefficient describes a small group, as a "
        "categorical level's would"
    ]


def test_value_counts_survive_the_result_file_the_checkers_read(tmp_path):
    # Lost on the way, the rule would have nothing to check and the regression would pass.
    frame = pl.DataFrame({"flag": [0, 1] * 20, "y": np.arange(40) * 0.5})
    out = fit_in_memory(step(predictors=["flag"], categorical=[]), frame)
    write_results(tmp_path, [out], {})
    (back,), _meta = read_results(tmp_path)
    assert back.value_counts == {"flag": {"0": 20, "1": 20}}
