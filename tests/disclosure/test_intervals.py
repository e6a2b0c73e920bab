"""The interval audit: what range the published table leaves each suppressed cell."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disclosure import (
    Protection,
    Rules,
    build_report,
    check_aggregated,
    check_table,
    render_html,
    render_markdown,
)
from disclosure.errors import DisclosureInputError
from disclosure.intervals import AUDITED, feasible_intervals
from disclosure.line_sums import table_lines
from tests.disclosure.test_line_sums import residents, small, suppressed_sums, tables


def interval(result, **levels) -> tuple[float, float]:
    cell = result.cell(**levels)
    return cell["interval_low"], cell["interval_high"]


def test_a_2x2_table_with_every_cell_suppressed_has_the_textbook_intervals():
    # Rows add up to 12 and 15, columns to 10 and 17: the top-left cell is at most
    # min(12, 10) = 10 and at least 12 - 17 < 0, so 0; and so on for each cell.
    result = check_table(
        residents(np.array([[4, 8], [6, 9]])),
        name="t",
        rows=["authority"],
        columns=["ltc_count"],
    )
    assert (result.inner()["suppressed"] == "primary").all()
    assert result.totals["suppressed"].to_list() == ["", "", "", "", ""]
    assert interval(result, authority="a0", ltc_count=0) == (0, 10)
    assert interval(result, authority="a0", ltc_count=1) == (2, 12)
    assert interval(result, authority="a1", ltc_count=0) == (0, 10)
    assert interval(result, authority="a1", ltc_count=1) == (5, 15)
    assert result.protection is not None and result.protection.audit == AUDITED


def test_published_cells_and_totals_have_no_interval():
    result = check_table(
        residents(np.array([[4, 8], [6, 9]])), name="t", rows=["authority"], columns=["ltc_count"]
    )
    published = result.cells.filter(pl.col("suppressed") == "")
    assert published["interval_low"].is_null().all()
    assert published["interval_high"].is_null().all()


def test_a_1_way_table_bounds_its_suppressed_cells_by_what_the_total_leaves():
    counts = np.array([3.0, 4.0, 20.0, 27.0])  # three cells, then their total
    found = feasible_intervals(counts, np.array([True, True, False, False]), table_lines(3, 0))
    assert found.status == AUDITED
    assert found.low[:2].tolist() == [0, 0]
    assert found.high[:2].tolist() == [7, 7]  # 27 - 20: either could be all of it
    assert np.isnan(found.low[2:]).all()


def test_a_line_of_zeros_pins_its_cells_to_a_point():
    # What protection must never leave: a column whose suppressed cells add up to 0
    # shows each is 0, and then the others in their rows are exact too.
    grid = np.array([[5.0, 0, 5], [7, 0, 7], [12, 0, 12]])
    hidden = np.zeros(grid.shape, dtype=bool)
    hidden[:2, :2] = True
    found = feasible_intervals(grid.ravel(), hidden.ravel(), table_lines(2, 2))
    assert found.low.reshape(3, 3)[:2, :2].tolist() == [[5, 0], [7, 0]]
    assert found.high.reshape(3, 3)[:2, :2].tolist() == [[5, 0], [7, 0]]


def test_without_totals_nothing_bounds_a_suppressed_cell():
    counts = np.array([3.0, 4.0, 20.0, np.nan])  # the table has no total
    found = feasible_intervals(counts, np.array([True, True, False, False]), table_lines(3, 0))
    assert found.high[:2].tolist() == [np.inf, np.inf]


def test_a_table_too_large_to_audit_is_reported_not_audited():
    counts = np.array([3.0, 4.0, 20.0, 27.0])
    found = feasible_intervals(
        counts, np.array([True, True, False, False]), table_lines(3, 0), max_audited=1
    )
    assert found.status.startswith("not audited: 2 suppressed cells")
    assert np.isnan(found.low).all()


#: Cell (a2, 0), 9 people, suppressed, can only be 2 to 10 (a width of 8).
NARROW = np.array([[28, 1, 6], [32, 20, 8], [9, 25, 1]])


def test_a_primary_cell_narrower_than_the_protection_level_leaves_protection_incomplete():
    strict = check_table(
        residents(NARROW),
        name="t",
        rows=["authority"],
        columns=["ltc_count"],
        protection=Protection(protection_level=100),
    )
    assert interval(strict, authority="a2", ltc_count=0) == (2, 10)
    assert strict.protection is not None
    assert (strict.protection.narrow, strict.protection.complete) == (1, False)
    assert strict.status == "fail"
    assert "1 suppressed cell(s) can be narrowed below the protection level" in strict.summary
    lenient = check_table(
        residents(NARROW),
        name="t",
        rows=["authority"],
        columns=["ltc_count"],
        protection=Protection(protection_level=50),
    )
    assert lenient.protection is not None and lenient.protection.complete
    assert lenient.status == "review"


@pytest.mark.parametrize("level", [-1, 101, "10%", True])
def test_a_bad_protection_level_is_refused_with_the_allowed_values(level):
    with pytest.raises(DisclosureInputError) as caught:
        Protection(protection_level=level)
    assert "protection_level is" in str(caught.value)
    assert "a percentage from 0 (off) to 100" in str(caught.value)


def test_a_policy_file_sets_the_protection_level_and_reads_it_in_words():
    protection = Protection.from_mapping({"protection_level": 15, "threshold": 10})
    assert protection.protection_level == 15
    assert "at least 15% of its value wide" in " ".join(protection.describe())
    with pytest.raises(DisclosureInputError, match="protection_level is 'high'"):
        Protection.from_mapping({"protection_level": "high"})


def test_the_report_shows_what_each_suppressed_cell_could_be():
    result = check_table(
        residents(np.array([[4, 8], [6, 9]])), name="t", rows=["authority"], columns=["ltc_count"]
    )
    report = build_report([result], rules=Rules(), policy={}, context={})
    cell = next(c for c in report["outputs"][0]["cells"] if c["keys"]["ltc_count"] == 0)
    assert cell["interval"] == [0, 10]
    assert "4 **✗** **⊘** (could be 0–10) (" in render_markdown(report)
    assert "<small>(could be 0–10)</small>" in render_html(report)


def test_a_table_without_totals_needs_no_audit():
    frame = residents(np.array([[4, 8], [6, 9]]))
    result = check_table(frame, name="t", rows=["authority"], columns=["ltc_count"])
    bare = check_aggregated(
        result.inner().select("authority", "ltc_count", "value", "n"),
        name="t",
        rows=["authority"],
        columns=["ltc_count"],
        value=None,
        statistic="count",
        rules=Rules(),
    )
    assert bare.protection is not None
    assert bare.protection.audit == "not needed: no true totals are published"
    assert bare.inner()["interval_low"].is_null().all()


@settings(max_examples=50, deadline=None, database=None)
@given(counts=tables)
def test_after_protection_no_suppressed_cell_is_a_point_and_no_line_hides_a_small_group(counts):
    result = check_table(
        residents(counts),
        name="t",
        rows=["authority"],
        columns=["ltc_count"],
        protection=Protection(),
    )
    hidden = result.cells.filter(pl.col("suppressed") != "")
    if hidden.height:
        assert result.protection is not None and result.protection.audit == AUDITED
        # (a) every suppressed cell keeps a range, and its true value lies in it
        assert (hidden["interval_low"] < hidden["interval_high"]).all()
        assert (hidden["interval_low"] <= hidden["value"]).all()
        assert (hidden["value"] <= hidden["interval_high"]).all()
    # (b) no published total shows its suppressed cells to be a small group
    assert small(suppressed_sums(result), 10) == {}


@settings(max_examples=60, deadline=None, database=None)
@given(
    inner=st.lists(st.integers(0, 5), min_size=6, max_size=6),
    hidden=st.lists(st.integers(0, 5), min_size=1, max_size=4, unique=True),
)
def test_the_intervals_are_those_of_every_whole_table_that_fits(inner, hidden):
    # An independent check with no solver: enumerate every filling of the suppressed
    # cells of a 2 x 3 table by whole numbers and keep those that match its totals.
    cells = np.array(inner, dtype=float).reshape(2, 3)
    grid = np.zeros((3, 4))
    grid[:2, :3] = cells
    grid[:2, 3] = cells.sum(axis=1)
    grid[2, :] = grid[:2].sum(axis=0)
    suppressed = np.zeros((3, 4), dtype=bool)
    rows, columns = np.divmod(np.array(hidden), 3)
    suppressed[rows, columns] = True
    found = feasible_intervals(grid.ravel(), suppressed.ravel(), table_lines(2, 3))
    ranges = [
        np.arange(int(min(grid[r, 3], grid[2, c])) + 1) for r, c in zip(rows, columns, strict=True)
    ]
    fillings = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, len(hidden))
    trials = np.repeat(cells[None], len(fillings), axis=0)
    trials[:, rows, columns] = fillings
    fits = (trials.sum(axis=2) == grid[:2, 3]).all(axis=1) & (
        trials.sum(axis=1) == grid[2, :3]
    ).all(axis=1)
    flat = rows * 4 + columns
    assert found.low[flat].tolist() == fillings[fits].min(axis=0).tolist()
    assert found.high[flat].tolist() == fillings[fits].max(axis=0).tolist()
