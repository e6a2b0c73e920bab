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
