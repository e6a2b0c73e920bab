"""A count table of a value column: per cell, the records (or units) that have a value."""

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from disclosure import Rules, aggregate, check_aggregated, check_request, check_table
from disclosure.errors import DisclosureInputError
from disclosure.published import measure_of

RULES = Rules(threshold=3)


@pytest.fixture
def tests_done():
    """Ward A: 6 records, 4 with a result (one NaN); ward B: 4 records of 3 people, and
    only person 7 (twice) and person 8 have a result."""
    return pl.DataFrame(
        {
            "ward": ["A"] * 6 + ["B"] * 4,
            "person": [1, 2, 3, 4, 5, 6, 7, 7, 8, 9],
            "result": [1.0, 2.0, 3.0, 4.0, None, float("nan"), 5.0, 6.0, 7.0, None],
            "coded": ["x", "y", "z", "x", None, None, "a", "b", "c", None],
        }
    )


def cell(result, ward):
    return result.cell(ward=ward)


def test_a_count_of_a_value_column_counts_the_records_that_have_a_value(tests_done):
    result = check_table(
        tests_done, name="t", rows=["ward"], value="result", statistic="count", rules=RULES
    )
    a, b = cell(result, "A"), cell(result, "B")
    # NaN is missing, as in the magnitude tables (and as pandas' count treats it).
    assert (a["value"], a["n"], a["records"], a["missing"]) == (4, 4, 6, 2)
    assert (b["value"], b["n"], b["records"], b["missing"]) == (3, 3, 4, 1)
    assert (a["status"], b["status"]) == ("pass", "pass")
    assert result.summary.startswith("table of 2 cells, counts of records with a value of result")


def test_the_threshold_applies_to_the_records_with_a_value(tests_done):
    result = check_table(
        tests_done,
        name="t",
        rows=["ward"],
        value="result",
        statistic="count",
        rules=Rules(threshold=4),
    )
    # Ward B has 4 records, enough; but only 3 have a result, which is what is published.
    assert cell(result, "B")["status"] == "fail"
    assert cell(result, "B")["reason"] == "3 records, below the threshold of 4"
    assert cell(result, "A")["status"] == "pass"


def test_with_a_unit_the_contributors_are_the_units_with_a_value(tests_done):
    result = check_table(
        tests_done,
        name="t",
        rows=["ward"],
        value="result",
        statistic="count",
        unit="person",
        rules=RULES,
    )
    b = cell(result, "B")
    # Person 7's two results are one contributor; person 9 has none.
    assert (b["value"], b["n"]) == (3, 2)
    assert (b["status"], b["reason"]) == ("fail", "2 people, below the threshold of 3")
    assert cell(result, "A")["n"] == 4


def test_any_type_of_column_can_be_counted(tests_done):
    result = check_table(
        tests_done, name="t", rows=["ward"], value="coded", statistic="count", rules=RULES
    )
    assert (cell(result, "A")["value"], cell(result, "B")["value"]) == (4, 3)


def test_a_cell_whose_records_all_lack_a_value_counts_no_one(tests_done):
    lacking = tests_done.with_columns(
        pl.when(pl.col("ward") == "B").then(None).otherwise(pl.col("result")).alias("result")
    )
    result = check_table(
        lacking, name="t", rows=["ward"], value="result", statistic="count", rules=RULES
    )
    b = cell(result, "B")
    assert (b["value"], b["n"], b["empty_cell"]) == (0, 0, False)
    assert b["reason"] == (
        "no contributors, below the threshold of 3: none of its 4 records has a value"
    )


@pytest.fixture(scope="module")
def lab_results():
    """Random microdata with null and NaN values, units spread over several records."""
    rng = np.random.default_rng(14)
    size = 2_000
    value = rng.integers(0, 50, size).astype(float)
    value[rng.random(size) < 0.1] = np.nan
    kept = rng.random(size) < 0.9
    return pl.DataFrame(
        {
            "area": rng.choice(["n", "s", "e", "w"], size),
            "band": rng.choice(["a", "b", "c"], size),
            "person": rng.integers(0, 300, size),
            "result": pl.Series(value.tolist()),
            "coded": pl.Series(rng.choice(["p", "q"], size).tolist()).zip_with(
                pl.Series(kept), pl.Series([None] * size, dtype=pl.String)
            ),
        }
    )


@pytest.mark.parametrize("unit", [None, "person"])
@pytest.mark.parametrize("value", ["result", "coded", None])
def test_the_cluster_path_agrees_with_check_table(lab_results, value, unit):
    """Fragments aggregated apart and merged (as on a cluster) give the same checked table."""
    keys = ["area", "band"]
    top_k = RULES.top_k
    fragments = [lab_results.slice(start, 300) for start in range(0, lab_results.height, 300)]
    partials = [
        aggregate.partial(f, keys, value, "count", top_k=top_k, unit=unit) for f in fragments
    ]
    merged = aggregate.merge(
        [aggregate.merge(partials[:3], keys, "count", top_k, unit=unit), *partials[3:]],
        keys,
        "count",
        top_k,
        unit=unit,
    )
    cells = aggregate.with_margins(
        merged, keys, "count", grid=[["area"], ["band"]], unit=unit, top_k=top_k
    )
    arguments = {"name": "t", "rows": ["area"], "columns": ["band"], "unit": unit}
    on_cluster = check_aggregated(cells, value=value, statistic="count", rules=RULES, **arguments)
    direct = check_table(lab_results, value=value, statistic="count", rules=RULES, **arguments)
    assert_frame_equal(on_cluster.cells, direct.cells)
    assert on_cluster.summary == direct.summary
    if value is not None:
        # And the counts are what they say: the records (contributors: units) with a value.
        counted = lab_results.with_columns(pl.col("result").fill_nan(None)).drop_nulls(value)
        by_cell = counted.group_by(keys).agg(
            pl.len().alias("expected_value"),
            (pl.col(unit).n_unique() if unit else pl.len()).alias("expected_n"),
        )
        joined = direct.inner_cells.join(by_cell, on=keys)
        assert joined.height == direct.inner_cells.height
        assert (joined["value"] == joined["expected_value"]).all()
        assert (joined["n"] == joined["expected_n"]).all()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nowhere", "value column 'nowhere' is not in the data"),
        ("ward", "value column 'ward' is also a key"),
        ("person", "unit-id column 'person' is also the value column"),
    ],
)
def test_a_count_of_a_value_column_it_cannot_count_says_why(tests_done, value, message):
    with pytest.raises(DisclosureInputError, match=message):
        check_table(
            tests_done, name="t", rows=["ward"], value=value, statistic="count", unit="person"
        )


def test_counts_of_a_value_column_are_not_compared_with_counts_of_records(tests_done):
    """A count of those tested and a count of everyone count different things: their
    difference is not a small group of people, so differencing must not pair them."""
    assert measure_of("count", "result", None) == "records with a value of result"
    assert measure_of("count", "result", "person") == "records with a value of result"
    assert measure_of("count", None, None) == "records"
    population = {"datasets": {"tests": 1}, "link": None, "filters": []}
    arguments = {"rows": ["ward"], "statistic": "count", "rules": RULES, "population": population}
    everyone = check_table(tests_done, name="everyone", **arguments)
    tested = check_table(tests_done, name="tested", value="result", **arguments)
    assert check_request([everyone, tested]) == []
