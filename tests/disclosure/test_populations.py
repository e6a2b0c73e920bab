"""Filters understood as sets of values: how two tables' populations relate."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure import Rules, check_request, check_table
from disclosure.populations import condition_set, difference_text, parse_condition, relation


def population(filters, types=None, version=1):
    found = {"datasets": {"residents": version}, "link": None, "filters": list(filters)}
    if types is not None:
        found["types"] = types
    return found


INTEGER = {"ltc_count": "integer"}


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # Numeric ranges as intervals.
        (["ltc_count not null"], ["ltc_count <= 7"], "contains"),
        (["ltc_count <= 7"], ["ltc_count < 8"], "inside"),  # reals: 7.5 is in one only
        (["ltc_count >= 0"], ["ltc_count <= 7"], "overlap"),
        (["ltc_count > 7"], ["ltc_count <= 7"], None),  # disjoint
        (["ltc_count >= 2", "ltc_count <= 5"], ["ltc_count in [3, 4]"], "contains"),
        (["ltc_count in [3, 4]"], ["ltc_count >= 3", "ltc_count <= 4"], "inside"),
        ([], ["ltc_count >= 0"], "contains"),  # no filter keeps the missing counts too
        (["ltc_count is null"], [], "inside"),
        # Categorical conditions as sets.
        (['sex != "f"'], ['sex == "m"'], "contains"),
        (['age_band in ["0-15", "16-64"]'], ['age_band == "0-15"'], "contains"),
        (['age_band not in ["0-15"]'], ['age_band != "0-15"'], "same"),
        (['sex == "f"'], ['sex == "m"'], None),
        # Conjunctions as their product: inside in every column.
        (['sex == "f"', "ltc_count >= 2"], ['sex == "f"', "ltc_count >= 3"], "contains"),
        (['sex == "f"', "ltc_count >= 3"], ["ltc_count >= 2"], "inside"),
        (['sex == "f"', "ltc_count >= 2"], ['sex == "m"', "ltc_count >= 3"], None),
        (['sex == "f"'], ["ltc_count >= 3"], "overlap"),
        # Written differently, the same rows.
        (["ltc_count >= 3", "ltc_count >= 3"], ["ltc_count >= 3"], "same"),
        # Unreadable filters fall back to comparing the text.
        (["a"], ["a", "b"], "contains"),
        (["a"], ["b"], None),
        (['x == "f"'], ["x >= 3"], None),  # text against a number: nothing to reason with
    ],
)
def test_filters_relate_as_sets_of_values(first, second, expected):
    assert relation(population(first), population(second)) == expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (["ltc_count <= 7"], ["ltc_count < 8"], "same"),
        (["ltc_count > 7"], ["ltc_count >= 8"], "same"),
        (["ltc_count > 6.5"], ["ltc_count >= 7"], "same"),
        (["ltc_count >= 2", "ltc_count <= 3"], ["ltc_count in [2, 3]"], "same"),
        (["ltc_count != 3"], ["ltc_count <= 2"], "contains"),
        (["ltc_count > 7"], ["ltc_count < 8"], None),  # nobody between 7 and 8
    ],
)
def test_whole_number_columns_read_whole_numbers(first, second, expected):
    assert relation(population(first, INTEGER), population(second, INTEGER)) == expected


def test_the_same_filters_over_two_versions_are_versions():
    assert (
        relation(
            population(["ltc_count <= 7"], version=1), population(["ltc_count < 8"], INTEGER, 2)
        )
        == "versions"
    )


def test_conditions_read_back_from_their_canonical_text():
    assert parse_condition('sex in ["f", "m"]') == ("sex", "in", ["f", "m"])
    assert parse_condition("ltc_count not null") == ("ltc_count", "not null", None)
    assert parse_condition("ltc_count <= 7") == ("ltc_count", "<=", 7)
    assert parse_condition("ltc_count <=7") is None
    assert parse_condition("ltc_count ~ 7") is None
    assert parse_condition("ltc_count == [1") is None
    assert condition_set("in", [1, "a"]) is None  # a list of numbers and text


def test_the_difference_of_overlapping_groups_is_named():
    assert difference_text(
        population(["ltc_count >= 0"], INTEGER), population(["ltc_count <= 7"], INTEGER)
    ) == ("ltc_count >= 8", "ltc_count <= -1")


# --- the defect: "ltc_count >= 0" against "ltc_count <= 7" was no finding ---------------


@pytest.fixture
def residents() -> pl.DataFrame:
    """120 residents of 3 authorities; in Wirral 4 have 8 long-term conditions."""
    rows = []
    for authority, many in (("Knowsley", 0), ("Sefton", 0), ("Wirral", 4)):
        rows += [{"authority": authority, "ltc_count": i % 8} for i in range(40 - many)]
        rows += [{"authority": authority, "ltc_count": 8} for _ in range(many)]
    return pl.DataFrame(rows)


def _by_authority(residents, name, filters, types=INTEGER):
    kept = residents
    for text in filters:
        kept = kept.filter(_expr(text, kept.schema))
    return check_table(kept, name=name, rows=["authority"], population=population(filters, types))


def test_overlapping_filters_with_a_small_difference_go_to_a_checker(residents):
    everyone = _by_authority(residents, "everyone", ["ltc_count >= 0"])
    fewer = _by_authority(residents, "fewer", ["ltc_count <= 7"])
    assert everyone.status == fewer.status == "pass"  # each alone is safe
    findings = check_request([everyone, fewer])
    assert [(f.kind, f.status, f.cells) for f in findings] == [
        ("difference", "review", ("authority Wirral", "grand total"))
    ]
    assert "ltc_count >= 8, less ltc_count <= -1" in findings[0].message
    assert everyone.status == fewer.status == "review"


def test_a_condition_true_of_every_value_makes_the_nesting_a_proven_failure(residents):
    # The service records "ltc_count >= 0" as "ltc_count not null" where no count is
    # negative (tre.service.populations): then the pair is nested, and against a released
    # table the new one fails.
    released = _by_authority(residents, "everyone", ["ltc_count not null"])
    fewer = _by_authority(residents, "fewer", ["ltc_count <= 7"])
    from disclosure import published_view

    view = published_view(released)
    view = type(view)(**{**view.__dict__, "job_id": 3})
    findings = check_request([fewer], released=[view])
    assert [(f.kind, f.status, f.cells) for f in findings] == [
        ("difference", "fail", ("authority Wirral", "grand total"))
    ]
    assert fewer.status == "fail"


def test_differently_written_filters_on_whole_numbers_are_checked_as_one_population(residents):
    # "< 8" and "<= 7" are the same rows: suppressed cells two tables both publish around
    # are checked for recovery, as for one population.
    rules = Rules(threshold=10)
    a = _by_authority(
        residents.with_columns(pl.col("ltc_count").clip(0, 7)), "a", ["ltc_count <= 7"]
    )
    b = check_table(
        residents.with_columns(pl.col("ltc_count").clip(0, 7)),
        name="b",
        rows=["authority"],
        population=population(["ltc_count < 8"], INTEGER),
        rules=rules,
    )
    assert relation(a.population, b.population) == "same"
    assert check_request([a, b]) == []  # the same cells: nothing new together


# --- property: the reading agrees with polars on real rows ------------------------------

_OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "not null"]
_condition = st.tuples(
    st.sampled_from(_OPS),
    st.integers(-2, 6),
    st.lists(st.integers(-2, 6), min_size=1, max_size=3),
)


def _text(op, value, values):
    if op in ("is null", "not null"):
        return f"x {op}"
    return f"x {op} {values if op in ('in', 'not in') else value}"


def _kept(frame, texts):
    for text in texts:
        frame = frame.filter(_expr(text, frame.schema))
    return set(frame.get_column("i").to_list())


def _expr(text, schema):
    """The polars filter a job runs for a condition."""
    column, op, value = parse_condition(text)
    x = pl.col(column)
    if op == "is null":
        return x.is_null()
    if op == "not null":
        return x.is_not_null()
    if op in ("in", "not in"):
        inside = x.is_in(pl.lit(value, dtype=pl.List(schema[column])))
        return inside if op == "in" else ~inside
    return {
        "==": x.__eq__,
        "!=": x.__ne__,
        "<": x.__lt__,
        "<=": x.__le__,
        ">": x.__gt__,
        ">=": x.__ge__,
    }[op](value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_condition, max_size=3),
    st.lists(_condition, max_size=3),
    st.booleans(),
)
def test_the_relation_agrees_with_the_rows_polars_keeps(one, two, integer):
    # Every whole and half value from -3 to 7, and a missing one: "contains" must mean
    # every row the second keeps the first keeps too, and so on. On reals the relation
    # may say less than the rows show (a half value would break it), never more.
    values = [v / 2 for v in range(-6, 15)] if not integer else list(range(-3, 8))
    frame = pl.DataFrame({"x": [*values, None], "i": list(range(len(values) + 1))})
    if integer:
        frame = frame.with_columns(pl.col("x").cast(pl.Int64))
    first = [_text(*c) for c in one]
    second = [_text(*c) for c in two]
    types = {"x": "integer"} if integer else {}
    kind = relation(population(first, types), population(second, types))
    a, b = _kept(frame, first), _kept(frame, second)
    if kind == "same":
        assert a == b
    elif kind == "contains":
        assert b <= a
    elif kind == "inside":
        assert a <= b
    elif kind is None:
        assert not (a & b)
    if integer and kind == "overlap":
        assert a & b and a - b and b - a
