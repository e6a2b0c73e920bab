"""Checking whole outputs: tables from microdata, regressions and files."""

import hashlib

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from disclosure import (
    Rules,
    aggregate,
    check_aggregated,
    check_file,
    check_regression,
    check_table,
    worst,
)
from disclosure.errors import DisclosureInputError


@pytest.fixture
def visits():
    """Ward x sex: A/F has 12 people, A/M 10, B/F 3, B/M none at all."""
    wards = ["A"] * 22 + ["B"] * 3
    sexes = ["F"] * 12 + ["M"] * 10 + ["F"] * 3
    costs = [10.0] * 12 + [5.0] * 9 + [955.0] + [1.0, 2.0, 3.0]
    return pl.DataFrame({"ward": wards, "sex": sexes, "cost": costs})


def status_of(result, ward, sex):
    row = result.inner().filter(pl.col("ward") == ward, pl.col("sex") == sex)
    return row["status"][0], row["reason"][0]


def test_a_frequency_table_fails_small_and_empty_cells(visits):
    result = check_table(visits, name="visits", rows=["ward"], columns=["sex"])
    assert status_of(result, "A", "F") == ("pass", "")
    assert status_of(result, "A", "M") == ("pass", "")
    assert status_of(result, "B", "F") == ("fail", "3 records, below the threshold of 10")
    assert status_of(result, "B", "M")[0] == "fail"
    assert "empty cell" in status_of(result, "B", "M")[1]
    assert result.check_status == "fail"
    assert result.counts == {
        "threshold": 2,
        "dominance": 0,
        "p_percent": 0,
        "statistic": 0,
        "negative_values": 0,
        "same_values": 0,
        "totals": 1,
    }
    # In a 2x2 table, row B could be worked out from the column totals unless row A goes
    # too: nothing is left to release.
    assert result.status == "fail"
    assert result.summary == (
        "table 2x2 counts: 2 of 4 cells fail (2 below the threshold); 1 total fail; "
        "protected: 3 suppressed, 3 more so they cannot be worked out from the totals "
        "(every cell is suppressed: nothing is left to release)"
    )


def test_a_protected_table_is_released_for_review():
    frame = pl.DataFrame(
        {
            "ward": ["A"] * 40 + ["B"] * 33 + ["C"] * 45,
            "sex": ["F"] * 20 + ["M"] * 20 + ["F"] * 30 + ["M"] * 3 + ["F"] * 15 + ["M"] * 30,
        }
    )
    result = check_table(frame, name="visits", rows=["ward"], columns=["sex"])
    assert (result.check_status, result.status) == ("fail", "review")
    assert result.protection is not None
    assert (result.protection.primary, result.protection.secondary) == (1, 3)
    assert result.summary == (
        "table 3x2 counts: 1 of 6 cells fail (1 below the threshold); "
        "protected: 1 suppressed, 3 more so they cannot be worked out from the totals"
    )
    suppressed = result.cells.filter(pl.col("suppressed") != "")
    assert suppressed["published"].null_count() == suppressed.height


def test_a_magnitude_table_fails_a_dominated_cell(visits):
    result = check_table(
        visits, name="costs", rows=["ward"], columns=["sex"], value="cost", statistic="mean"
    )
    status, reason = status_of(result, "A", "M")
    assert status == "fail"
    assert reason == (
        "the largest 2 contributors hold 96% of the total, above 90%; the second largest "
        "contributor could estimate the largest contribution to within 4%, closer than 10% "
        "(p% rule)"
    )
    assert status_of(result, "A", "F") == (
        "review",
        "every contributor has the same value, so the cell shows each one's value",
    )
    assert result.summary.startswith(
        "table 2x2 mean of cost: 3 of 4 cells fail (2 below the threshold, 1 dominated, "
        "1 failing the p% rule); 2 totals fail; 1 of 4 cells need review "
        "(every contributor alike); protected: "
    )


def test_a_table_that_passes_says_so():
    frame = pl.DataFrame({"ward": ["A"] * 10 + ["B"] * 11})
    result = check_table(frame, name="wards", rows=["ward"])
    assert result.status == "pass"
    assert result.summary == "table of 2 cells, counts: all 2 cells pass"


def test_negative_values_need_review():
    frame = pl.DataFrame({"ward": ["A"] * 12, "change": [-3.0] + [1.0] * 11})
    result = check_table(frame, name="c", rows=["ward"], value="change", statistic="sum")
    assert result.status == "review"
    assert result.summary.endswith("1 of 1 cells need review (negative values)")
    assert result.counts["negative_values"] == 1


def test_min_max_tables_fail_every_cell():
    frame = pl.DataFrame({"ward": ["A"] * 50, "age": list(range(50))})
    result = check_table(frame, name="oldest", rows=["ward"], value="age", statistic="max")
    assert result.status == "fail"
    assert result.counts["statistic"] == 1
    assert "1 min/max values" in result.summary


def test_quantile_tables_describe_the_quantile():
    frame = pl.DataFrame({"ward": ["A"] * 20, "age": list(range(20))})
    result = check_table(
        frame, name="q", rows=["ward"], value="age", statistic="quantile", quantile=0.9
    )
    assert result.cells["value"][0] == pytest.approx(17.1)
    assert result.summary.startswith("table of 1 cells, quantile 0.9 of age")


def test_an_empty_table_needs_review():
    frame = pl.DataFrame(schema={"ward": pl.String, "sex": pl.String})
    result = check_table(frame, name="none", rows=["ward"], columns=["sex"])
    assert result.status == "review"
    assert "no cells" in result.summary


def test_a_wider_dominance_rule_gets_enough_evidence():
    frame = pl.DataFrame({"k": ["a"] * 13, "v": [30.0, 30.0, 30.0] + [1.0] * 10})
    result = check_table(
        frame,
        name="t",
        rows=["k"],
        value="v",
        statistic="sum",
        rules=Rules(dominance_n=3, dominance_k=0.85),
    )
    assert result.inner()["fails_dominance"].to_list() == [True]


def test_check_aggregated_is_what_the_engine_calls(visits):
    keys = ["ward", "sex"]
    cells = aggregate.finalize(aggregate.partial(visits, keys, None, "count"), keys, "count")
    result = check_aggregated(
        cells,
        name="visits",
        rows=["ward"],
        columns=["sex"],
        value=None,
        statistic="count",
        rules=Rules(threshold=3),
    )
    assert result.counts["threshold"] == 1  # only the empty cell: B/F has exactly 3
    with pytest.raises(DisclosureInputError, match=r"no column.*age"):
        check_aggregated(
            cells,
            name="visits",
            rows=["age"],
            columns=[],
            value=None,
            statistic="count",
            rules=Rules(),
        )


def test_check_table_refuses_bad_arguments(visits):
    with pytest.raises(DisclosureInputError, match="list of row keys"):
        check_table(visits, name="t", rows="ward")
    with pytest.raises(DisclosureInputError, match="needs a value column"):
        check_table(visits, name="t", rows=["ward"], statistic="mean")


@pytest.mark.parametrize(("df_resid", "status"), [(9, "fail"), (10, "pass")])
def test_regressions_need_enough_residual_degrees_of_freedom(df_resid, status):
    coefficients = pl.DataFrame(
        {
            "term": ["(intercept)", "age"],
            "estimate": [1.0, 0.5],
            "std_error": [0.1, 0.2],
            "statistic": [10.0, 2.5],
            "p_value": [0.0001, 0.03],
        }
    )
    result = check_regression(
        name="r",
        model="ols",
        n_obs=df_resid + 2,
        df_resid=df_resid,
        coefficients=coefficients,
        rules=Rules(),
    )
    assert result.status == status
    if status == "fail":
        assert result.reasons == ["9 residual degrees of freedom, below the minimum of 10"]
        assert "below the minimum of 10" in result.summary
    else:
        assert result.reasons == []
        assert result.summary == (
            "regression ols (12 observations, 2 terms): "
            "10 residual degrees of freedom, at least the minimum of 10"
        )


def test_regression_inputs_are_validated():
    with pytest.raises(DisclosureInputError) as caught:
        check_regression(
            name="r",
            model="ols",
            n_obs=5,
            df_resid=-1,
            coefficients=pl.DataFrame({"term": ["x"]}),
            rules=Rules(),
        )
    assert "df_resid is -1" in str(caught.value)
    assert "lack column(s) estimate, std_error, statistic, p_value" in str(caught.value)
    with pytest.raises(DisclosureInputError, match="more than n_obs"):
        check_regression(
            name="r",
            model="ols",
            n_obs=5,
            df_resid=6,
            coefficients=pl.DataFrame(
                schema=["term", "estimate", "std_error", "statistic", "p_value"]
            ),
            rules=Rules(),
        )


def test_files_always_need_review():
    digest = hashlib.sha256(b"figure").hexdigest()
    result = check_file(name="fig", filename="fig.png", size=2048, sha256=digest)
    assert result.status == "review"
    assert result.summary == "file fig.png (2.0 KiB): a person must review any free-form file"
    with pytest.raises(DisclosureInputError, match="64 lower-case hex digits"):
        check_file(name="fig", filename="fig.png", size=1, sha256="abc")


def test_worst_status():
    assert worst(["pass", "review", "pass"]) == "review"
    assert worst(["review", "fail", "pass"]) == "fail"
    assert worst(["pass"]) == "pass"
    assert worst([]) == "pass"
    with pytest.raises(DisclosureInputError, match="unknown status"):
        worst(["ok"])


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", None]),
        st.sampled_from(["x", "y"]),
        st.one_of(st.none(), st.integers(-2, 30)),
    ),
    min_size=0,
    max_size=80,
)


@settings(max_examples=40, deadline=None, database=None)
@given(
    rows=rows_strategy,
    order=st.randoms(use_true_random=False),
    statistic=st.sampled_from(aggregate.STATISTICS),
)
def test_the_order_of_rows_does_not_change_the_checked_table(rows, order, statistic):
    frame = pl.DataFrame(rows, schema={"a": pl.String, "b": pl.String, "v": pl.Int64}, orient="row")
    shuffled = list(rows)
    order.shuffle(shuffled)
    other = pl.DataFrame(shuffled, schema=frame.schema, orient="row")
    arguments = {
        "name": "t",
        "rows": ["a"],
        "columns": ["b"],
        "statistic": statistic,
        "value": None if statistic == "count" else "v",
        "quantile": 0.75 if statistic == "quantile" else None,
        "rules": Rules(threshold=3),
    }
    first, second = check_table(frame, **arguments), check_table(other, **arguments)
    assert_frame_equal(first.cells, second.cells)
    assert (first.status, first.summary, first.counts) == (
        second.status,
        second.summary,
        second.counts,
    )


def test_a_categorical_level_with_few_observations_fails_a_regression():
    coefficients = pl.DataFrame(
        {
            "term": ["(intercept)", "band[old]", "band[very old]"],
            "estimate": [1.0, 0.5, 2.0],
            "std_error": [0.1, 0.2, 0.9],
            "statistic": [10.0, 2.5, 2.2],
            "p_value": [0.0001, 0.03, 0.04],
        }
    )
    result = check_regression(
        name="r",
        model="ols",
        n_obs=200,
        df_resid=197,
        coefficients=coefficients,
        rules=Rules(),
        level_counts={"band": {"young": 120, "old": 76, "very old": 4}},
    )
    assert result.status == "fail"
    assert result.reasons == [
        "level 'very old' of band has 4 observations, below the threshold of 10: its "
        "coefficient describes a small group"
    ]
    assert result.summary.endswith("; 1 categorical level below the threshold")


def _indicator_model(**kw):
    coefficients = pl.DataFrame(
        {
            "term": ["(intercept)", "has_diabetes", "age"],
            "estimate": [3.0, 4.0, 0.1],
            "std_error": [0.2, 1.9, 0.01],
            "statistic": [15.0, 2.1, 10.0],
            "p_value": [0.0001, 0.04, 0.0001],
        }
    )
    return check_regression(
        name="r", model="ols", n_obs=200, df_resid=197, coefficients=coefficients, **kw
    )


def test_a_binary_predictor_with_one_person_in_a_level_fails_a_regression():
    result = _indicator_model(rules=Rules(), value_counts={"has_diabetes": {"0": 199, "1": 1}})
    assert result.status == "fail"
    assert result.reasons == [
        "value 1 of has_diabetes has 1 observation, below the threshold of 10: has_diabetes "
        "has only 2 distinct values, so its coefficient describes a small group, as a "
        "categorical level's would"
    ]
    # The researcher's summary says how many values are small, never their counts.
    assert result.summary.endswith("; 1 value of predictors with few values below the threshold")
    assert "199" not in result.summary
    assert result.value_counts == {"has_diabetes": {"0": 199, "1": 1}}  # checkers' evidence


def test_a_binary_predictor_with_enough_in_each_level_passes():
    result = _indicator_model(rules=Rules(), value_counts={"has_diabetes": {"0": 190, "1": 10}})
    assert (result.status, result.reasons) == ("pass", [])


def test_a_predictor_with_many_values_is_not_checked_value_by_value():
    # Six values, each of a few people: a slope through them, not a group's mean.
    ages = {str(age): 1 if age == 90 else 39 for age in range(40, 100, 10)}
    assert _indicator_model(rules=Rules(), value_counts={"age": ages}).status == "pass"
    # A policy that counts predictors of up to six values as few checks it.
    strict = _indicator_model(rules=Rules(few_values=6), value_counts={"age": ages})
    assert strict.status == "fail"
    assert strict.reasons[0].startswith("value 90 of age has 1 observation")
    assert "only 6 distinct values" in strict.reasons[0]


def test_the_cells_alone_the_totals_alone_and_one_cell_by_its_levels(visits):
    result = check_table(visits, name="visits", rows=["ward"], columns=["sex"])
    assert result.inner_cells.height == 4  # 2 wards x 2 sexes, B/M empty
    assert set(result.inner_cells["margin"]) == {""}
    assert sorted(result.totals["margin"]) == ["column", "column", "row", "row", "total"]
    assert result.inner_cells.height + result.totals.height == result.cells.height
    assert_frame_equal(result.inner(), result.inner_cells)  # the older name still works
    empty = result.cell(ward="B", sex="M")
    assert (empty["n"], empty["empty_cell"], empty["status"]) == (0, True, "fail")
    assert result.cell(sex="F", ward="A")["value"] == 12


def test_asking_for_a_cell_by_the_wrong_keys_says_which_keys_find_one(visits):
    result = check_table(visits, name="visits", rows=["ward"], columns=["sex"])
    with pytest.raises(DisclosureInputError) as caught:
        result.cell(ward="A", age="old")
    assert caught.value.reasons == ["'age' is not a key of the table", "no level given for 'sex'"]
    assert caught.value.fix == "name every key once, e.g. result.cell(ward=..., sex=...)"
    with pytest.raises(DisclosureInputError, match="has no cell ward='C', sex='F'"):
        result.cell(ward="C", sex="F")
