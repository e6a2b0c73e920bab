"""partial / merge / finalize give the same cells as a direct polars computation."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from disclosure import aggregate
from disclosure import finalize as finalize_module
from disclosure.errors import DisclosureInputError

KEYS = ["area", "band"]


@pytest.fixture(scope="module")
def frame():
    """Random microdata with null keys, null and NaN values, negatives and many ties."""
    rng = np.random.default_rng(42)
    size = 3_000
    area = rng.integers(0, 4, size).astype(float)
    area[rng.random(size) < 0.03] = np.nan
    value = rng.integers(-3, 40, size).astype(float)
    value[rng.random(size) < 0.05] = np.nan  # NaN counts as missing
    return pl.DataFrame(
        {
            "area": pl.Series(area).fill_nan(None).cast(pl.Int64),
            "band": rng.choice(["a", "b", "c", "d", "e"], size),
            "v": pl.Series(value).to_list(),
        }
    ).with_columns(
        # One combination never occurs, so the grid must add it.
        pl.when((pl.col("area") == 3) & (pl.col("band") == "e"))
        .then(pl.lit("d"))
        .otherwise(pl.col("band"))
        .alias("band")
    )


def magnitude_args(statistic):
    value = None if statistic == "count" else "v"
    quantile = 0.3 if statistic == "quantile" else None
    return value, quantile


def reference(frame, statistic, quantile, top_k=2):
    """The same table computed directly with polars (and numpy for the std)."""
    v = pl.col("v").fill_nan(None)
    value = {
        "count": pl.len().cast(pl.Float64),
        "sum": pl.when(v.count() > 0).then(v.sum()),
        "mean": v.mean(),
        "median": v.median(),
        "std": v.std(ddof=1),
        "min": v.min(),
        "max": v.max(),
        "quantile": v.quantile(quantile or 0.5, interpolation="linear"),
        "mode": v.drop_nulls().mode().min(),
    }[statistic]
    magnitude = statistic != "count"
    positional = statistic in ("median", "quantile", "mode")
    table = (
        frame.group_by(KEYS)
        .agg(
            value.cast(pl.Float64).alias("value"),
            (v.count() if magnitude else pl.len()).cast(pl.Int64).alias("n"),
            pl.len().cast(pl.Int64).alias("records"),
            (v.sum() if magnitude else pl.lit(None, pl.Float64)).alias("sum"),
            (
                v.drop_nulls().top_k(top_k).sort(descending=True)
                if magnitude
                else pl.lit([], pl.List(pl.Float64))
            ).alias("top"),
            ((v < 0).any() if magnitude else pl.lit(False)).alias("negative"),
            (v.null_count() if magnitude else pl.lit(0)).cast(pl.Int64).alias("missing"),
            ((v.count() > 0) & (v.min() == v.max()) if magnitude else pl.lit(False)).alias(
                "same_value"
            ),
            pl.col("v").fill_nan(None).drop_nulls().alias("_values"),
        )
        .with_columns(pl.col("top").cast(pl.List(pl.Float64)))
        .sort(KEYS, nulls_last=True)
    )
    if not positional:
        nothing = pl.lit(None, pl.Int64)
        return table.drop("_values").with_columns(nothing.alias("below"), nothing.alias("above"))
    # Values at or below / at or above the statistic, counted one cell at a time.
    below = [
        sum(x <= q for x in values) if q is not None else None
        for values, q in zip(table["_values"].to_list(), table["value"].to_list(), strict=True)
    ]
    above = [
        sum(x >= q for x in values) if q is not None else None
        for values, q in zip(table["_values"].to_list(), table["value"].to_list(), strict=True)
    ]
    return table.drop("_values").with_columns(
        pl.Series("below", below, pl.Int64), pl.Series("above", above, pl.Int64)
    )


def observed(cells):
    """Only the cells with records (the reference has no grid completion)."""
    return cells.filter(pl.col("records") > 0)


@pytest.mark.parametrize("statistic", aggregate.STATISTICS)
def test_finalize_of_partial_matches_a_direct_computation(frame, statistic):
    value, quantile = magnitude_args(statistic)
    cells = aggregate.finalize(
        aggregate.partial(frame, KEYS, value, statistic), KEYS, statistic, quantile
    )
    assert_frame_equal(observed(cells), reference(frame, statistic, quantile))


@pytest.mark.parametrize("statistic", aggregate.STATISTICS)
def test_merging_three_parts_equals_the_whole(frame, statistic):
    value, quantile = magnitude_args(statistic)
    parts = [frame[:700], frame[700:1900], frame[1900:]]
    partials = [aggregate.partial(p, KEYS, value, statistic, top_k=3) for p in parts]
    merged = aggregate.merge(partials, KEYS, statistic, top_k=3)
    whole = aggregate.partial(frame, KEYS, value, statistic, top_k=3)
    assert_frame_equal(
        aggregate.finalize(merged, KEYS, statistic, quantile),
        aggregate.finalize(whole, KEYS, statistic, quantile),
    )
    assert_frame_equal(
        observed(aggregate.finalize(merged, KEYS, statistic, quantile)),
        reference(frame, statistic, quantile, top_k=3),
    )


@pytest.mark.parametrize("statistic", aggregate.STATISTICS)
def test_merging_one_partial_gives_it_back(frame, statistic):
    value, _ = magnitude_args(statistic)
    part = aggregate.partial(frame, KEYS, value, statistic)
    assert_frame_equal(
        aggregate.merge([part], KEYS, statistic), part, check_row_order=False, check_exact=True
    )


def test_std_is_exact_when_the_mean_dwarfs_the_spread():
    # Sums of squares would cancel here; merged squared deviations do not.
    rng = np.random.default_rng(1)
    values = 1e9 + rng.normal(0, 0.5, 1_000)
    frame = pl.DataFrame({"k": ["x"] * 1_000, "v": values})
    parts = [aggregate.partial(frame[i::4], ["k"], "v", "std") for i in range(4)]
    cells = aggregate.finalize(aggregate.merge(parts, ["k"], "std"), ["k"], "std")
    assert cells["value"][0] == pytest.approx(np.std(values, ddof=1), rel=1e-6)
    naive = (np.sum(values**2) - np.sum(values) ** 2 / 1_000) / 999
    assert abs(naive - np.var(values, ddof=1)) > 0.1  # what a sum of squares would report


def test_std_and_mean_are_null_where_undefined():
    frame = pl.DataFrame({"k": ["one", "none"], "v": [5.0, None]})
    std = aggregate.finalize(aggregate.partial(frame, ["k"], "v", "std"), ["k"], "std")
    mean = aggregate.finalize(aggregate.partial(frame, ["k"], "v", "mean"), ["k"], "mean")
    assert std["value"].to_list() == [None, None]  # n = 0 and n = 1
    assert mean["value"].to_list() == [None, 5.0]


@pytest.mark.parametrize("q", [0.1, 0.25, 0.9, 0.999])
def test_quantiles_are_exact_over_merged_parts(q):
    rng = np.random.default_rng(2)
    values = rng.gamma(2, 3, 501)
    frame = pl.DataFrame({"k": [1] * 501, "v": values})
    parts = [aggregate.partial(frame[i::3], ["k"], "v", "quantile") for i in range(3)]
    cells = aggregate.finalize(
        aggregate.merge(parts, ["k"], "quantile"), ["k"], "quantile", quantile=q
    )
    assert cells["value"][0] == pytest.approx(np.quantile(values, q), rel=1e-12)


@pytest.mark.parametrize(
    ("values", "top_k", "expected"),
    [
        ([7, 7, 3], 2, [7, 7]),
        ([7, 3, 3], 2, [7, 3]),
        ([5], 2, [5]),
        ([None, None], 2, []),
        ([9, 9, 9, 1], 3, [9, 9, 9]),
        ([9, 8, 8, 8, 1], 3, [9, 8, 8]),
        ([4, 1, 3, 2], 3, [4, 3, 2]),
        ([-1, -5, -2], 2, [-1, -2]),
        ([6, 2, 6], 1, [6]),
    ],
)
def test_top_values_keep_ties(values, top_k, expected):
    frame = pl.DataFrame(
        {"k": ["x"] * len(values), "v": values}, schema={"k": pl.String, "v": pl.Float64}
    )
    cells = aggregate.finalize(
        aggregate.partial(frame, ["k"], "v", "sum", top_k=top_k), ["k"], "sum"
    )
    assert cells["top"].to_list() == [expected]


def test_top_values_survive_a_merge_when_the_largest_are_split():
    first = pl.DataFrame({"k": ["x"] * 3, "v": [10.0, 1.0, 1.0]})
    second = pl.DataFrame({"k": ["x"] * 3, "v": [10.0, 9.0, 2.0]})
    parts = [aggregate.partial(f, ["k"], "v", "sum") for f in (first, second)]
    cells = aggregate.finalize(aggregate.merge(parts, ["k"], "sum"), ["k"], "sum")
    assert cells["top"].to_list() == [[10.0, 10.0]]


def test_grid_completion_adds_empty_cells():
    frame = pl.DataFrame({"ward": ["a", "a", "b"], "sex": ["f", "m", "f"], "v": [1.0, 2.0, 3.0]})
    counts = aggregate.finalize(
        aggregate.partial(frame, ["ward", "sex"], None, "count"), ["ward", "sex"], "count"
    )
    assert counts.select("ward", "sex", "value", "n", "records").rows() == [
        ("a", "f", 1.0, 1, 1),
        ("a", "m", 1.0, 1, 1),
        ("b", "f", 1.0, 1, 1),
        ("b", "m", 0.0, 0, 0),  # the zero a frequency table must show (and the rules fail)
    ]
    means = aggregate.finalize(
        aggregate.partial(frame, ["ward", "sex"], "v", "mean"), ["ward", "sex"], "mean"
    )
    empty = means.filter(pl.col("ward") == "b", pl.col("sex") == "m")
    assert empty.select(
        "value", "n", "records", "top", "negative", "missing", "same_value", "below"
    ).row(0) == (None, 0, 0, [], False, 0, False, None)


def test_grid_groups_keep_nested_keys_from_inventing_cells():
    # Wards sit inside districts: a district x ward cross would add impossible cells.
    frame = pl.DataFrame(
        {"district": ["n", "n", "s"], "ward": ["n1", "n2", "s1"], "sex": ["f", "m", "f"]}
    )
    keys = ["district", "ward", "sex"]
    merged = aggregate.partial(frame, keys, None, "count")
    assert aggregate.finalize(merged, keys, "count").height == 2 * 3 * 2
    crosstab = aggregate.finalize(merged, keys, "count", grid=[["district", "ward"], ["sex"]])
    assert crosstab.select(*keys, "n").rows() == [
        ("n", "n1", "f", 1),
        ("n", "n1", "m", 0),
        ("n", "n2", "f", 0),
        ("n", "n2", "m", 1),
        ("s", "s1", "f", 1),
        ("s", "s1", "m", 0),
    ]
    with pytest.raises(DisclosureInputError, match="does not split the keys"):
        aggregate.finalize(merged, keys, "count", grid=[["district"], ["sex"]])


def test_null_keys_are_a_level_of_their_own():
    frame = pl.DataFrame({"ward": ["a", None, None], "sex": ["f", "f", None]})
    cells = aggregate.finalize(
        aggregate.partial(frame, ["ward", "sex"], None, "count"), ["ward", "sex"], "count"
    )
    assert cells.select("ward", "sex", "n").rows() == [
        ("a", "f", 1),
        ("a", None, 0),
        (None, "f", 1),
        (None, None, 1),
    ]


def test_one_key_tables_get_no_invented_cells():
    frame = pl.DataFrame({"ward": ["a", "b", "b"]})
    cells = aggregate.finalize(aggregate.partial(frame, ["ward"], None, "count"), ["ward"], "count")
    assert cells.select("ward", "n").rows() == [("a", 1), ("b", 2)]


def test_finalize_has_the_evidence_contract_and_types():
    frame = pl.DataFrame({"ward": ["a"], "v": [1]})
    cells = aggregate.finalize(
        aggregate.partial(frame.lazy(), ["ward"], "v", "mean"), ["ward"], "mean"
    )
    assert cells.schema == pl.Schema(
        {
            "ward": pl.String,
            "value": pl.Float64,
            "n": pl.Int64,
            "records": pl.Int64,
            "sum": pl.Float64,
            "top": pl.List(pl.Float64),
            "negative": pl.Boolean,
            "missing": pl.Int64,
            "same_value": pl.Boolean,
            "below": pl.Int64,
            "above": pl.Int64,
        }
    )


def test_an_empty_frame_gives_an_empty_table():
    frame = pl.DataFrame(schema={"ward": pl.String, "sex": pl.String, "v": pl.Float64})
    cells = aggregate.finalize(
        aggregate.partial(frame, ["ward", "sex"], "v", "median"), ["ward", "sex"], "median"
    )
    assert cells.height == 0
    assert cells.columns == ["ward", "sex", *aggregate.EVIDENCE_COLUMNS]


def test_a_huge_grid_is_refused(monkeypatch):
    monkeypatch.setattr(finalize_module, "MAX_GRID_CELLS", 5)
    frame = pl.DataFrame({"a": [1, 2, 3], "b": [1, 2, 3]})
    with pytest.raises(DisclosureInputError, match=r"9 cells .* more than the limit of 5"):
        aggregate.finalize(aggregate.partial(frame, ["a", "b"], None, "count"), ["a", "b"], "count")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"statistic": "average"}, "unknown statistic 'average'.*use one of: count, sum"),
        ({"keys": ["ward", "postcode"]}, "key column 'postcode' is not in the data.*columns are"),
        ({"value": "name"}, "value column 'name' is a String column; mean needs numbers"),
        ({"value": None}, "statistic 'mean' needs a value column"),
        ({"value": "nowhere", "statistic": "count"}, "value column 'nowhere' is not in the data"),
        ({"value": "ward"}, "value column 'ward' is also a key"),
        ({"keys": "ward"}, "needs a list of one or more key columns"),
        ({"keys": []}, "needs a list of one or more key columns"),
        ({"keys": ["ward", "ward"]}, "key 'ward' is listed more than once"),
        ({"top_k": 0}, "top_k must be a whole number from 1 to 10"),
    ],
)
def test_bad_partial_arguments_say_what_to_fix(kwargs, message):
    frame = pl.DataFrame({"ward": ["a"], "name": ["x"], "v": [1.0]})
    arguments = {"keys": ["ward"], "value": "v", "statistic": "mean", "top_k": 2} | kwargs
    with pytest.raises(DisclosureInputError, match=f"(?s){message}"):
        aggregate.partial(frame, **arguments)


@pytest.mark.parametrize("name", ["status", "n", "_hidden"])
def test_keys_that_would_clash_with_evidence_are_refused(name):
    frame = pl.DataFrame({name: ["a"]})
    with pytest.raises(DisclosureInputError, match=f"key '{name}'"):
        aggregate.partial(frame, [name], None, "count")


@pytest.mark.parametrize(
    ("statistic", "quantile", "message"),
    [
        ("quantile", None, "needs a quantile strictly between 0 and 1, and got None"),
        ("quantile", 1.0, "strictly between 0 and 1, and got 1.0"),
        ("quantile", 0, "strictly between 0 and 1, and got 0"),
        ("mean", 0.5, "quantile=0.5 is given, but the statistic is 'mean'"),
    ],
)
def test_bad_quantiles_are_refused(statistic, quantile, message):
    frame = pl.DataFrame({"ward": ["a"], "v": [1.0]})
    merged = aggregate.partial(frame, ["ward"], "v", statistic)
    with pytest.raises(DisclosureInputError, match=message):
        aggregate.finalize(merged, ["ward"], statistic, quantile)


def test_merge_refuses_nothing_and_mismatched_partials():
    frame = pl.DataFrame({"ward": ["a"], "v": [1.0]})
    with pytest.raises(DisclosureInputError, match="at least one partial"):
        aggregate.merge([], ["ward"], "mean")
    three = aggregate.partial(frame, ["ward"], "v", "mean", top_k=3)
    with pytest.raises(DisclosureInputError, match=r"unexpected column.*_top3"):
        aggregate.merge([three], ["ward"], "mean", top_k=2)
    with pytest.raises(DisclosureInputError, match=r"missing column.*_m2"):
        aggregate.finalize(three, ["ward"], "std")


cells_data = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([1, 2]), st.integers(-5, 50)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=40, deadline=None, database=None)
@given(
    rows=cells_data,
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    statistic=st.sampled_from(aggregate.STATISTICS),
)
def test_merge_is_associative_and_order_independent(rows, cut, statistic):
    frame = pl.DataFrame(rows, schema=["x", "y", "v"], orient="row")
    first, second = sorted(int(c * len(rows)) for c in cut)
    value, quantile = magnitude_args(statistic)
    parts = [
        aggregate.partial(piece, ["x", "y"], value, statistic)
        for piece in (frame[:first], frame[first:second], frame[second:])
    ]
    left = aggregate.merge(
        [aggregate.merge(parts[:2], ["x", "y"], statistic), parts[2]], ["x", "y"], statistic
    )
    right = aggregate.merge(
        [parts[2], aggregate.merge([parts[1], parts[0]], ["x", "y"], statistic)],
        ["x", "y"],
        statistic,
    )
    assert_frame_equal(
        aggregate.finalize(left, ["x", "y"], statistic, quantile),
        aggregate.finalize(right, ["x", "y"], statistic, quantile),
    )
