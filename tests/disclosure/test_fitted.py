"""Checking a regression fitted by statsmodels or lifelines, read from the fitted object."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from lifelines import CoxPHFitter

import disclosure
from disclosure import Rules, check_fitted
from disclosure.errors import DisclosureInputError
from disclosure.fitted import REFERENCE_LEVEL


def visits(size=200, diabetic=20, seed=14):
    """GP visits against age, with `diabetic` people marked by a 0/1 indicator."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, size).astype(float)
    has_diabetes = (np.arange(size) < diabetic).astype(int)
    gp_visits = 2 + 0.05 * age + 3 * has_diabetes + rng.normal(0, 1, size)
    return pd.DataFrame({"gp_visits": gp_visits, "age": age, "has_diabetes": has_diabetes})


def test_a_healthy_ols_passes_and_its_coefficients_are_the_fit():
    fitted = smf.ols("gp_visits ~ age + has_diabetes", visits()).fit()
    result = check_fitted("visits", fitted)
    assert (result.status, result.reasons) == ("pass", [])
    assert (result.model, result.n_obs, result.df_resid) == ("OLS", 200, 197)
    assert result.coefficients["term"].to_list() == ["Intercept", "age", "has_diabetes"]
    assert result.coefficients["estimate"].to_list() == pytest.approx(fitted.params.to_list())
    assert result.coefficients["std_error"].to_list() == pytest.approx(fitted.bse.to_list())
    assert result.coefficients["p_value"].to_list() == pytest.approx(fitted.pvalues.to_list())
    # The indicator's values were counted from the design matrix; age has too many values.
    assert result.value_counts == {"has_diabetes": {"0": 180, "1": 20}}


def test_a_binary_predictor_isolating_one_person_fails():
    # Intercept plus the indicator's coefficient is that one person's number of visits.
    fitted = smf.ols("gp_visits ~ age + has_diabetes", visits(diabetic=1)).fit()
    result = check_fitted("visits", fitted)
    assert result.status == "fail"
    assert result.reasons == [
        "value 1 of has_diabetes has 1 observation, below the threshold of 10: has_diabetes "
        "has only 2 distinct values, so its coefficient describes a small group, as a "
        "categorical level's would"
    ]


def test_the_few_values_policy_parameter_is_applied():
    # Six bands, the top one of 3 people: a slope through six values by default, a
    # small group when a policy checks predictors of up to six values.
    data = visits().assign(band=[1, 2, 3, 4, 5] * 39 + [6] * 3 + [1, 2])
    fitted = smf.ols("gp_visits ~ band", data).fit()
    assert check_fitted("v", fitted).value_counts["band"]["6"] == 3
    assert check_fitted("v", fitted).status == "pass"
    assert check_fitted("v", fitted, rules=Rules(few_values=6)).status == "fail"


def test_too_few_residual_degrees_of_freedom_fail():
    data = visits(size=12, diabetic=6)
    fitted = sm.OLS(data["gp_visits"], sm.add_constant(data[["age"]]).assign(x=range(12))).fit()
    result = check_fitted("small", fitted)
    assert result.df_resid == 9
    assert result.status == "fail"
    assert "9 residual degrees of freedom, below the minimum of 10" in result.reasons


def test_a_logit_is_read_the_same_way():
    data = visits()
    rng = np.random.default_rng(1)
    data["admitted"] = (rng.random(len(data)) < 0.2 + 0.3 * data["has_diabetes"]).astype(int)
    fitted = smf.logit("admitted ~ age + has_diabetes", data).fit(disp=0)
    result = check_fitted("admissions", fitted)
    assert (result.model, result.n_obs, result.df_resid, result.status) == (
        "Logit",
        200,
        197,
        "pass",
    )
    assert result.coefficients["statistic"].to_list() == pytest.approx(fitted.tvalues.to_list())
    glm = smf.glm("admitted ~ age", data, family=sm.families.Binomial()).fit()
    assert check_fitted("admissions", glm).model == "GLM (Binomial)"


def test_a_small_reference_level_of_a_categorical_predictor_fails():
    """A formula's categorical predictor: each level is a 0/1 column, and the reference
    level, which has none, is what the intercept describes."""
    data = visits()
    data["ward"] = ["w0"] * 3 + ["w1"] * 97 + ["w2"] * 100  # w0, the reference, has 3
    result = check_fitted("wards", smf.ols("gp_visits ~ C(ward)", data).fit())
    assert result.level_counts == {"C(ward)": {REFERENCE_LEVEL: 3, "w1": 97, "w2": 100}}
    assert result.status == "fail"
    assert result.reasons[0].startswith(
        f"level '{REFERENCE_LEVEL}' of C(ward) has 3 observations, below the threshold of 10"
    )


def test_a_cox_model_is_checked_with_the_frame_it_was_fitted_on():
    data = visits().assign(
        weeks=lambda f: 1 + f.gp_visits.abs(),
        died=lambda f: (np.arange(len(f)) % 3 == 0).astype(int),
        rare=lambda f: (np.arange(len(f)) < 2).astype(int),
    )
    columns = ["weeks", "died", "age", "has_diabetes"]
    cox = CoxPHFitter().fit(data[columns], "weeks", "died")
    result = check_fitted("survival", cox, data=data)
    events = int(data["died"].sum())
    assert (result.model, result.n_obs, result.df_resid) == ("CoxPH", 200, events - 2)
    assert result.coefficients["term"].to_list() == ["age", "has_diabetes"]
    assert result.status == "pass"
    isolating = CoxPHFitter().fit(data[[*columns, "rare"]], "weeks", "died")
    assert check_fitted("survival", isolating, data=data).status == "fail"
    with pytest.raises(DisclosureInputError, match="pass the frame it was fitted on"):
        check_fitted("survival", cox)


def test_a_model_with_several_coefficients_per_term_is_refused_with_the_way_out():
    rng = np.random.default_rng(2)
    exog = sm.add_constant(rng.normal(size=100))
    multinomial = sm.MNLogit(rng.integers(0, 3, 100), exog).fit(disp=0)
    with pytest.raises(
        DisclosureInputError,
        match=r"(?s)params has shape \(2, 2\).*"
        "pass its figures to check_regression",
    ):
        check_fitted("m", multinomial)


@pytest.mark.parametrize("thing", [object(), {"nobs": 3}, CoxPHFitter()])
def test_an_object_that_is_not_a_fitted_model_is_refused_saying_what_it_lacks(thing):
    with pytest.raises(DisclosureInputError) as caught:
        check_fitted("r", thing)
    text = str(caught.value)
    assert f"a {type(thing).__name__} is not a fitted model check_fitted can read" in text
    assert "as a statsmodels result it lacks nobs, df_resid, params, bse" in text
    assert "as a lifelines CoxPHFitter it lacks summary, event_observed" in text
    assert "pass its figures to check_regression" in text


def test_disclosure_reads_fitted_models_without_importing_their_libraries():
    """disclosure stays polars and numpy only: the fitted object is read by its attributes."""
    probe = (
        "import sys, disclosure; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'statsmodels', 'lifelines', 'pandas', 'scipy'}))"
    )
    root = Path(disclosure.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=60,
    )
    assert done.stdout.strip() == "[]"
