"""Unit-level contributors: several records of one person are one contributor."""

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from disclosure import Rules, aggregate, check_table
from disclosure.errors import DisclosureInputError

KEYS = ["area", "band"]


@pytest.fixture(scope="module")
def visits():
    """GP visits: 400 people with 1-6 records each, costs with ties and a few nulls."""
    rng = np.random.default_rng(5)
    people = np.repeat(np.arange(400), rng.integers(1, 7, 400))
    size = people.size
    cost = rng.integers(1, 60, size).astype(float)
    cost[rng.random(size) < 0.04] = np.nan
    return pl.DataFrame(
        {
            "person": people,
            "area": rng.choice(["n", "s", "e"], size),
            "band": rng.choice(["young", "old"], size),
            "cost": pl.Series(cost).fill_nan(None),
        }
    )


def unit_reference(frame, statistic):
    """The evidence computed directly: per (cell, person) totals, then per cell."""
    magnitude = statistic != "count"
    per_person = frame.group_by([*KEYS, "person"]).agg(
        pl.len().alias("records"),
        pl.col("cost").count().alias("with_value"),
        pl.col("cost").sum().alias("total"),
    )
    contributors = ((pl.col("with_value") > 0).sum() if magnitude else pl.len()).cast(pl.Int64)
    return (
        per_person.group_by(KEYS)
        .agg(
            contributors.alias("n"),
            pl.col("records").sum().cast(pl.Int64).alias("records"),
            pl.col("total")
            .filter(pl.col("with_value") > 0)
            .top_k(2)
            .sort(descending=True)
            .alias("top"),
        )
        .with_columns(pl.col("top").cast(pl.List(pl.Float64)))
        .sort(KEYS)
    )


@pytest.mark.parametrize("statistic", ["count", "sum", "mean"])
def test_contributors_are_people_and_dominance_uses_their_totals(visits, statistic):
    value = None if statistic == "count" else "cost"
    merged = aggregate.partial(visits, KEYS, value, statistic, unit="person")
    cells = aggregate.finalize(merged, KEYS, statistic, unit="person")
    expected = unit_reference(visits, statistic)
    got = cells.select(*KEYS, "n", "records", "top").sort(KEYS)
    if statistic == "count":
        got, expected = got.drop("top"), expected.drop("top")
    assert_frame_equal(got, expected)
    # The statistic itself is still over records: the mean cost of a visit.
    if statistic == "mean":
        direct = visits.group_by(KEYS).agg(pl.col("cost").mean()).sort(KEYS)
        assert cells.sort(KEYS)["value"].to_list() == pytest.approx(direct["cost"].to_list())


def test_a_person_in_two_cells_of_a_row_counts_once_in_its_total():
    frame = pl.DataFrame(
        {"person": [1, 1, 2], "area": ["n", "n", "n"], "band": ["young", "old", "old"]}
    )
    merged = aggregate.partial(frame, KEYS, None, "count", unit="person")
    table = aggregate.with_margins(merged, KEYS, "count", grid=[["area"], ["band"]], unit="person")
    row_total = table.filter(pl.col("margin") == "row")
    assert row_total.select("n", "records").row(0) == (2, 3)
    assert table.filter(pl.col("margin") == "total")["n"].to_list() == [2]


def test_the_threshold_counts_people_not_records():
    # One person with 30 records is one contributor: the cell fails.
    frame = pl.DataFrame(
        {"person": [7] * 30 + list(range(100, 112)), "area": ["n"] * 30 + ["s"] * 12}
    )
    result = check_table(frame, name="t", rows=["area"], unit="person", rules=Rules())
    cells = {row["area"]: row for row in result.inner().iter_rows(named=True)}
    assert cells["n"]["status"] == "fail"
    assert cells["n"]["reason"] == "1 person, below the threshold of 10"
    assert cells["s"]["status"] == "pass"


def test_one_person_dominating_through_many_small_records_fails_dominance():
    # Twelve people; person 1 has 50 records of 10, the rest one record of 5 each.
    frame = pl.DataFrame(
        {
            "person": [1] * 50 + list(range(2, 13)),
            "area": ["n"] * 61,
            "cost": [10.0] * 50 + [5.0] * 11,
        }
    )
    by_record = check_table(frame, name="t", rows=["area"], value="cost", statistic="sum")
    by_person = check_table(
        frame, name="t", rows=["area"], value="cost", statistic="sum", unit="person"
    )
    assert by_record.inner()["fails_dominance"].to_list() == [False]
    assert by_person.inner()["fails_dominance"].to_list() == [True]


def test_a_unit_that_is_also_a_key_is_refused(visits):
    with pytest.raises(DisclosureInputError, match="unit 'area' is also a key"):
        aggregate.partial(visits, KEYS, None, "count", unit="area")
    with pytest.raises(DisclosureInputError, match="unit-id column 'nobody' is not in the data"):
        aggregate.partial(visits, KEYS, None, "count", unit="nobody")


people = st.lists(
    st.tuples(
        st.integers(0, 12),  # person
        st.sampled_from(["n", "s"]),
        st.sampled_from(["young", "old"]),
        st.integers(0, 40),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=40, deadline=None, database=None)
@given(
    rows=people,
    cuts=st.lists(st.integers(0, 60), max_size=4),
    statistic=st.sampled_from(["count", "sum", "mean", "median", "std", "max"]),
)
def test_unit_tables_do_not_depend_on_how_the_records_are_split_into_fragments(
    rows, cuts, statistic
):
    frame = pl.DataFrame(rows, schema=["person", "area", "band", "cost"], orient="row")
    value = None if statistic == "count" else "cost"
    bounds = sorted({0, len(rows), *(c for c in cuts if c < len(rows))})
    parts = [
        aggregate.partial(frame[a:b], KEYS, value, statistic, unit="person")
        for a, b in itertools.pairwise(bounds)
    ]
    merged = aggregate.merge(parts, KEYS, statistic, unit="person")
    whole = aggregate.partial(frame, KEYS, value, statistic, unit="person")
    grid = [["area"], ["band"]]
    assert_frame_equal(
        aggregate.with_margins(merged, KEYS, statistic, grid=grid, unit="person"),
        aggregate.with_margins(whole, KEYS, statistic, grid=grid, unit="person"),
    )


@settings(max_examples=40, deadline=None, database=None)
@given(
    rows=people,
    which=st.integers(0, 59),
    share=st.floats(0, 1, allow_nan=False),
    order=st.randoms(use_true_random=False),
)
def test_splitting_a_persons_record_in_two_leaves_the_checked_table_unchanged(
    rows, which, share, order
):
    """A person's value split over two records (same total, same cell) is the same
    contributor: contributors, unit totals and every rule's outcome are unchanged."""
    person, area, band, cost = rows[which % len(rows)]
    first = float(round(cost * share))
    split = [
        *rows[: which % len(rows)],
        (person, area, band, first),
        (person, area, band, cost - first),
        *rows[which % len(rows) + 1 :],
    ]
    order.shuffle(split)
    schema = {"person": pl.Int64, "area": pl.String, "band": pl.String, "cost": pl.Float64}
    before = pl.DataFrame(rows, schema=schema, orient="row")
    after = pl.DataFrame(split, schema=schema, orient="row")
    arguments = {
        "name": "t",
        "rows": ["area"],
        "columns": ["band"],
        "value": "cost",
        "statistic": "sum",
        "unit": "person",
        "rules": Rules(threshold=3),
    }
    one, two = check_table(before, **arguments), check_table(after, **arguments)
    same = ["n", "sum", "top", "status", "reason", "suppressed", "published", "published_n"]
    order_by = ["margin", *KEYS]
    assert_frame_equal(
        one.cells.sort(order_by, nulls_last=True).select(*KEYS, *same),
        two.cells.sort(order_by, nulls_last=True).select(*KEYS, *same),
    )
    assert (one.status, one.check_status) == (two.status, two.check_status)
