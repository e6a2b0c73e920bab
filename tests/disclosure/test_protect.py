"""Protection: primary and secondary suppression, rounding, redaction and totals."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure import Protection, Rules, check_table, released_table
from disclosure.errors import DisclosureInputError
from disclosure.protect import rounded
from disclosure.secondary import exposed_two_way, protect_two_way


def microdata(counts: np.ndarray) -> pl.DataFrame:
    """Row-level data whose (ward, sex) table is `counts` (columns named s0, s1, ...)."""
    wards, sexes = [], []
    for (i, j), n in np.ndenumerate(counts):
        wards += [f"w{i}"] * int(n)
        sexes += [f"s{j}"] * int(n)
    return pl.DataFrame({"ward": wards, "sex": sexes}, schema={"ward": pl.String, "sex": pl.String})


def determined_by_published(result, two_way: bool) -> list[str]:
    """An independent check: every suppressed cell or total whose value the published
    cells and totals fix, by comparing matrix ranks (numpy), one target at a time."""
    inner = result.inner()
    rows = sorted(set(inner["ward"].to_list()))
    cols = sorted(set(inner["sex"].to_list())) if two_way else [None]
    index = {(r, c): i * len(cols) + j for i, r in enumerate(rows) for j, c in enumerate(cols)}
    equations, targets, labels = [], [], []
    for cell in result.cells.iter_rows(named=True):
        vector = np.zeros(len(index))
        margin = cell["margin"]
        for (r, c), position in index.items():
            if (
                margin == "total"
                or (margin == "row" and r == cell["ward"])
                or (margin == "column" and c == cell["sex"])
                or (margin == "" and r == cell["ward"] and (not two_way or c == cell["sex"]))
            ):
                vector[position] = 1.0
        if cell["suppressed"]:
            targets.append(vector)
            labels.append(f"{margin or 'cell'} {cell['ward']} {cell.get('sex')}")
        else:
            equations.append(vector)
    system = np.array(equations) if equations else np.zeros((0, len(index)))
    rank = np.linalg.matrix_rank(system) if equations else 0
    return [
        label
        for label, target in zip(labels, targets, strict=True)
        if np.linalg.matrix_rank(np.vstack([system, target])) == rank
    ]


tables = st.integers(1, 5).flatmap(
    lambda rows: st.integers(1, 5).flatmap(
        lambda cols: st.lists(
            st.one_of(st.integers(0, 12), st.integers(10, 60)),
            min_size=rows * cols,
            max_size=rows * cols,
        ).map(lambda values: np.array(values).reshape(rows, cols))
    )
)


@settings(max_examples=120, deadline=None, database=None)
@given(counts=tables)
def test_no_suppressed_cell_can_be_worked_out_from_a_2_way_table_and_its_totals(counts):
    result = check_table(microdata(counts), name="t", rows=["ward"], columns=["sex"])
    assert result.protection is not None and result.protection.complete
    failing = result.cells.filter(pl.col("status") == "fail")
    # Every failing cell and total is suppressed ...
    assert (failing["suppressed"] != "").all()
    # ... and none of the suppressed can be worked out from what is published.
    assert determined_by_published(result, two_way=True) == []
    # Nothing published fails.
    assert result.status in ("pass", "review") or result.protection.published_cells == 0


@settings(max_examples=80, deadline=None, database=None)
@given(counts=st.lists(st.one_of(st.integers(0, 12), st.integers(10, 60)), min_size=1, max_size=8))
def test_no_suppressed_cell_can_be_worked_out_from_a_1_way_table_and_its_total(counts):
    frame = microdata(np.array(counts).reshape(-1, 1)).drop("sex")
    result = check_table(frame, name="t", rows=["ward"])
    assert (result.cells.filter(pl.col("status") == "fail")["suppressed"] != "").all()
    assert determined_by_published(result, two_way=False) == []


def test_a_lone_small_cell_gets_a_partner_in_a_1_way_table():
    frame = pl.DataFrame({"ward": ["a"] * 3 + ["b"] * 20 + ["c"] * 30})
    result = check_table(frame, name="t", rows=["ward"])
    assert result.inner().select("ward", "suppressed").rows() == [
        ("a", "primary"),
        ("b", "secondary"),  # the smallest passing cell
        ("c", ""),
    ]
    assert result.cells.filter(pl.col("margin") == "total")["published"].to_list() == [53.0]


def test_secondary_suppression_prefers_small_inner_cells_to_totals():
    counts = np.array([[3, 40, 12], [50, 60, 14], [70, 80, 90]])
    result = check_table(microdata(counts), name="t", rows=["ward"], columns=["sex"])
    hidden = result.cells.filter(pl.col("suppressed") != "")
    assert hidden.filter(pl.col("margin") != "").height == 0
    assert sorted(hidden.select("ward", "sex").rows()) == [
        ("w0", "s0"),
        ("w0", "s2"),
        ("w1", "s0"),
        ("w1", "s2"),
    ]


def test_bridges_between_two_protected_cycles_are_found():
    # Two 4-cycles joined by one cell: that cell alone is determined.
    suppressed = np.zeros((6, 6), dtype=bool)
    for r, c in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]:
        suppressed[r, c] = True
    exposed = exposed_two_way(suppressed)
    assert list(zip(*np.nonzero(exposed), strict=True)) == [(1, 2)]
    protected, complete = protect_two_way(suppressed, np.ones((6, 6)))
    assert complete and not exposed_two_way(protected).any()


def test_rounding_to_a_base_with_totals_recomputed_from_the_rounded_cells():
    counts = np.array([[13, 22], [37, 41]])
    result = check_table(
        microdata(counts),
        name="t",
        rows=["ward"],
        columns=["sex"],
        protection=Protection(round_to=5),
    )
    table = released_table(result)
    cells = table.filter(pl.col("ward") != "Total", pl.col("sex") != "Total")
    assert cells["count"].to_list() == [15.0, 20.0, 35.0, 40.0]
    totals = dict(zip(zip(table["ward"], table["sex"], strict=True), table["count"], strict=True))
    assert totals[("w0", "Total")] == 35.0  # 15 + 20, not the true 35 rounded by chance
    assert totals[("Total", "s0")] == 50.0  # 15 + 35 (the true 50)
    assert totals[("Total", "Total")] == 110.0  # 15 + 20 + 35 + 40 (the true total is 113)
    assert result.summary.endswith("protected: counts rounded to the nearest 5")
    assert result.status == "pass"


def test_opensafely_redaction_then_rounding():
    counts = np.array([[6, 8, 40], [12, 30, 51]])
    result = check_table(
        microdata(counts),
        name="t",
        rows=["ward"],
        columns=["sex"],
        rules=Rules(threshold=5),
        protection=Protection(redact_at_or_below=7, round_to=5, secondary=False),
    )
    table = released_table(result).filter(pl.col("ward") != "Total", pl.col("sex") != "Total")
    assert table.select("count", "suppressed").rows() == [
        (None, True),  # 6 passes the threshold of 5, but is redacted
        (10.0, False),  # 8 is above the redaction limit, and rounded
        (40.0, False),
        (10.0, False),
        (30.0, False),
        (50.0, False),
    ]
    assert result.protection is not None and result.protection.redacted == 1
    totals = released_table(result).filter(pl.col("sex") == "Total")
    assert totals["count"].to_list() == [50.0, 90.0, 140.0]  # sums of what is published


def test_totals_with_every_cell_suppressed_are_blank_not_zero():
    counts = np.array([[3, 2], [40, 50], [45, 60]])
    result = check_table(
        microdata(counts),
        name="t",
        rows=["ward"],
        columns=["sex"],
        protection=Protection(round_to=5),
    )
    row = released_table(result).filter(pl.col("ward") == "w0", pl.col("sex") == "Total")
    assert row["count"].to_list() == [None]


def test_without_suppression_a_failing_table_stays_failing():
    counts = np.array([[3, 40], [50, 60]])
    result = check_table(
        microdata(counts),
        name="t",
        rows=["ward"],
        columns=["sex"],
        protection=Protection(suppress=False),
    )
    assert result.status == "fail"
    assert (result.cells["suppressed"] == "").all()


def test_totals_can_be_left_out_of_the_release():
    counts = np.array([[30, 40], [50, 60]])
    result = check_table(
        microdata(counts),
        name="t",
        rows=["ward"],
        columns=["sex"],
        protection=Protection(totals=False),
    )
    assert released_table(result).height == 4


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"secondary": False}, "a suppressed cell could be worked out from its row or column"),
        ({"round_to": 1}, "round_to is 1"),
        ({"redact_at_or_below": -1}, "redact_at_or_below is -1"),
        ({"totals": "yes"}, "totals is 'yes'"),
    ],
)
def test_protection_parameters_are_checked(settings_, message):
    with pytest.raises(DisclosureInputError, match=message):
        Protection(**settings_)
    assert Protection(secondary=False, round_to=5).secondary is False
    assert Protection(secondary=False, totals=False).secondary is False


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (2, 0), (2.5, 5), (12.49, 10), (13, 15)])
def test_rounding_is_to_the_nearest_multiple_halves_up(value, expected):
    got = pl.DataFrame({"x": [float(value)]}).select(rounded(pl.col("x"), 5)).item()
    assert got == expected
