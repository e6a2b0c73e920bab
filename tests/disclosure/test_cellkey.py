"""The cell key method: the same records always get the same noise, which follows the
perturbation table and never publishes a count that may not be published."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure.cellkey import KEY_SPACE, PTable, cell_keys, perturb, record_keys
from disclosure.errors import DisclosureInputError

TABLE = PTable.design(max_noise=3, variance=2.0, smallest=4, p_stay=0.5)


def _people(n: int = 200, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "ward": rng.choice(["w1", "w2", "w3", "w4"], size=n),
            "sex": rng.choice(["F", "M"], size=n),
            "record_key": record_keys(n, seed=seed),
        }
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.lists(st.integers(1, 199), max_size=6))
def test_a_cells_key_is_the_same_whatever_the_order_and_fragments(seed, cuts):
    people = _people()
    whole = cell_keys(people, ["ward", "sex"], "record_key").sort("ward", "sex")
    shuffled = people.sample(fraction=1.0, shuffle=True, seed=seed)
    edges = [0, *sorted(set(cuts)), people.height]
    parts = [shuffled.slice(a, b - a) for a, b in itertools.pairwise(edges)]
    # Each fragment's keys summed, then the sums summed: what merging partials does.
    sums = pl.concat(
        p.group_by("ward", "sex").agg(pl.col("record_key").cast(pl.UInt64).sum().alias("s"))
        for p in parts
        if p.height
    )
    merged = (
        sums.group_by("ward", "sex")
        .agg((pl.col("s").sum() % KEY_SPACE).alias("s"))
        .with_columns((pl.col("s").cast(pl.Float64) / KEY_SPACE).alias("cell_key"))
        .sort("ward", "sex")
    )
    assert merged.get_column("cell_key").to_list() == whole.get_column("cell_key").to_list()
    again = cell_keys(shuffled, ["ward", "sex"], "record_key").sort("ward", "sex")
    assert again.equals(whole)


def test_the_same_cell_in_two_jobs_is_published_the_same():
    people = _people()
    first = cell_keys(people, ["ward"], "record_key").sort("ward")
    second = cell_keys(people.reverse(), ["ward"], "record_key").sort("ward")
    one = perturb(first.get_column("n").to_numpy(), first.get_column("cell_key").to_numpy(), TABLE)
    two = perturb(
        second.get_column("n").to_numpy(), second.get_column("cell_key").to_numpy(), TABLE
    )
    assert one.tolist() == two.tolist()
    # A total is a cell of its own: perturbed by its own key, the same way every time.
    total = cell_keys(people, [], "record_key")
    assert total.get_column("n").to_list() == [200]


@pytest.mark.parametrize("n", [1, 3, 5, 6, 8, 30])
def test_the_noise_follows_the_table(n):
    keys = np.random.default_rng(n).random(200_000)
    published = perturb(np.full(keys.size, n), keys, TABLE)
    values, counts = np.unique(published, return_counts=True)
    expected = TABLE.outcomes(n)
    assert set(values.tolist()) <= set(expected)
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        assert count / keys.size == pytest.approx(expected[value], abs=0.005)


@pytest.mark.parametrize("table", [TABLE, PTable.design(), PTable.design(2, 1.0, 10, 0.3)])
def test_every_row_is_unbiased_and_publishes_no_small_count(table):
    for n in range(0, 40):
        outcomes = table.outcomes(n)
        assert sum(outcomes.values()) == pytest.approx(1.0)
        assert sum(o * p for o, p in outcomes.items()) == pytest.approx(n, abs=1e-9)
        assert min(outcomes) >= 0
        assert not [o for o in outcomes if 1 <= o <= table.smallest]
    assert table.outcomes(0) == {0: 1.0}  # an empty cell stays empty
    assert table.reached_variance == pytest.approx(table.variance, rel=1e-6)


def test_small_counts_never_publish_their_true_value():
    keys = np.random.default_rng(7).random(50_000)
    for n in range(1, TABLE.smallest + 1):
        published = perturb(np.full(keys.size, n), keys, TABLE)
        assert not ((published >= 1) & (published <= TABLE.smallest)).any()


def test_subtracting_two_overlapping_tables_does_not_recover_the_small_group():
    # Everyone, and everyone but a group of g in one cell: across many datasets (fresh
    # record keys), the published difference takes many values for each g, and each
    # value observed is one that several group sizes give, so none says g.
    rng = np.random.default_rng(3)
    seen: dict[int, set[int]] = {}
    for group in (1, 2, 3, 4):
        differences = set()
        for _ in range(400):
            rest, small = rng.integers(0, KEY_SPACE, 60), rng.integers(0, KEY_SPACE, group)
            everyone = (int(rest.sum() + small.sum()) % KEY_SPACE) / KEY_SPACE
            others = (int(rest.sum()) % KEY_SPACE) / KEY_SPACE
            a, b = perturb([60 + group, 60], [everyone, others], TABLE)
            differences.add(int(a - b))
        seen[group] = differences
        assert len(differences) >= 5  # no single answer
    for group, values in seen.items():
        for other, theirs in seen.items():
            assert len(values & theirs) >= 3, (group, other)  # no telling them apart


def test_parameters_no_table_satisfies_are_refused_saying_why():
    with pytest.raises(DisclosureInputError) as bad:
        PTable.design(max_noise=0, variance=-1, smallest=-2, p_stay=1.5)
    assert len(bad.value.reasons) == 4
    with pytest.raises(DisclosureInputError, match=r"a variance of at most 0\.5, not 2"):
        PTable.design(max_noise=1, variance=2.0, p_stay=0.5)


def test_data_without_record_keys_is_refused():
    with pytest.raises(DisclosureInputError, match="no record-key column 'record_key'"):
        cell_keys(pl.DataFrame({"ward": ["w1"]}), ["ward"], "record_key")


# --- the mergeable path: each cell carries its key sum ------------------------------


@pytest.mark.parametrize("unit", [None, "who"])
@pytest.mark.parametrize("statistic", ["count", "mean"])
def test_partials_merged_in_any_tree_give_every_cell_and_total_its_key(unit, statistic):
    from disclosure import aggregate

    people = _people(300, seed=5).with_columns(
        pl.Series("who", [f"p{i % 120}" for i in range(300)]),
        pl.Series("cost", [float(i % 17) for i in range(300)]),
    )
    value = "cost" if statistic == "mean" else None
    parts = [
        aggregate.partial(
            people.slice(i, 70),
            ["ward", "sex"],
            value,
            statistic,
            unit=unit,
            record_key="record_key",
        )
        for i in range(0, 300, 70)
    ]
    left = aggregate.merge(parts[:2], ["ward", "sex"], statistic, unit=unit)
    right = aggregate.merge(parts[2:], ["ward", "sex"], statistic, unit=unit)
    merged = aggregate.merge([right, left], ["ward", "sex"], statistic, unit=unit)
    cells = aggregate.with_margins(merged, ["ward", "sex"], statistic, unit=unit)
    expected = cell_keys(people, ["ward", "sex"], "record_key")
    inner = cells.filter(pl.col("margin") == "").join(expected, on=["ward", "sex"], suffix="_e")
    assert inner.height == expected.height
    assert inner.get_column("cell_key").to_list() == inner.get_column("cell_key_e").to_list()
    total = cells.filter(pl.col("margin") == "total").get_column("cell_key").to_list()
    assert total == cell_keys(people, [], "record_key").get_column("cell_key").to_list()
    rows = cells.filter(pl.col("margin") == "row").sort("ward")
    by_ward = cell_keys(people, ["ward"], "record_key").sort("ward")
    assert rows.get_column("cell_key").to_list() == by_ward.get_column("cell_key").to_list()


def test_a_table_without_record_keys_has_no_cell_key_and_a_bad_column_is_refused():
    from disclosure import aggregate

    people = _people(50)
    plain = aggregate.partial(people, ["ward"], None, "count")
    assert "_keysum" not in plain.columns
    with pytest.raises(DisclosureInputError, match="not whole numbers"):
        aggregate.partial(
            people.with_columns(pl.col("record_key").cast(pl.Float64)),
            ["ward"],
            None,
            "count",
            record_key="record_key",
        )
    with pytest.raises(DisclosureInputError, match="is also a key"):
        aggregate.partial(people, ["ward", "record_key"], None, "count", record_key="record_key")


# --- protection by the cell key method: check_table with record keys -------------------


def _noisy():
    from disclosure import Protection

    return Protection(cell_key=True, cell_key_smallest=4)


def _residents(n=400, seed=9):
    rng = np.random.default_rng(seed)
    wards = rng.choice([f"w{i}" for i in range(12)], size=n, p=[0.2] * 4 + [0.025] * 8)
    return pl.DataFrame(
        {"ward": wards, "sex": rng.choice(["F", "M"], size=n), "record_key": record_keys(n, seed)}
    )


def test_a_count_table_with_record_keys_is_published_with_noise_not_suppressed():
    from disclosure import check_table

    people = _residents()
    result = check_table(
        people, name="t", rows=["ward"], columns=["sex"], record_key="record_key",
        protection=_noisy(),
    )  # fmt: skip
    cells = result.cells
    assert (cells.get_column("suppressed") == "").all()  # nothing hidden
    assert result.protection.cell_key and result.protection.perturbed > 0
    assert result.status == "review"
    assert "published with noise by the cell key method" in result.summary
    published = cells.get_column("published").to_list()
    true = cells.get_column("value").to_list()
    assert published != true
    assert not [p for p in published if 1 <= p <= 4]  # never a count from 1 to 4
    assert all(abs(p - t) <= 3 or t <= 4 + 3 for p, t in zip(published, true, strict=True))
    # The same records in another order, another job: the same numbers.
    again = check_table(
        people.sample(fraction=1.0, shuffle=True, seed=1), name="t", rows=["ward"],
        columns=["sex"], record_key="record_key", protection=_noisy(),
    )  # fmt: skip
    key = ["ward", "sex", "margin"]
    assert again.cells.sort(key, nulls_last=True).get_column("published").to_list() == (
        cells.sort(key, nulls_last=True).get_column("published").to_list()
    )


def test_tables_the_cell_key_method_cannot_protect_are_suppressed_as_before():
    from disclosure import check_table

    people = _residents().with_columns(pl.Series("cost", [1.0] * 400))
    without_keys = check_table(
        people.drop("record_key"), name="t", rows=["ward"], protection=_noisy()
    )
    mean = check_table(
        people, name="m", rows=["ward"], value="cost", statistic="mean",
        record_key="record_key", protection=_noisy(),
    )  # fmt: skip
    for result in (without_keys, mean):
        assert not result.protection.cell_key
        assert (result.cells.get_column("suppressed") != "").any()


def test_perturbed_tables_are_left_out_of_differencing_and_say_so_in_the_ledger():
    from disclosure import check_request, check_table, published_view
    from disclosure.published import PublishedTable

    people = _residents()
    everyone = check_table(
        people, name="a", rows=["ward"], record_key="record_key", protection=_noisy(),
        population={"datasets": {"r": 1}, "link": None, "filters": []},
    )  # fmt: skip
    fewer = check_table(
        people.filter(pl.col("sex") == "F"), name="b", rows=["ward"], record_key="record_key",
        protection=_noisy(), population={"datasets": {"r": 1}, "link": None,
        "filters": ['sex == "F"']},
    )  # fmt: skip
    assert check_request([everyone, fewer]) == []
    view = published_view(everyone)
    assert view.perturbed
    assert PublishedTable.from_json(view.to_json()).perturbed


def test_a_cell_key_policy_with_rounding_or_an_unreachable_variance_is_refused():
    from disclosure import Protection

    with pytest.raises(DisclosureInputError) as both:
        Protection(cell_key=True, round_to=5)
    assert "one protection of counts at a time" in str(both.value.reasons)
    with pytest.raises(DisclosureInputError, match="a variance of at most"):
        Protection(cell_key=True, cell_key_max_noise=1, cell_key_variance=5.0)
    assert any("cell key method" in line for line in Protection(cell_key=True).describe())
