"""Bin labels of a table step's binned key column (jobs.frames.binned)."""

import polars as pl

from jobs.frames import binned


def test_each_value_gets_the_label_of_its_bin_and_missing_stays_missing():
    frame = pl.DataFrame({"x": [-1.0, 0.0, 15.9, 16.0, 85.0, 99.5, None], "y": [1] * 7})
    out = binned(frame, {"x": [0, 16, 85]})
    assert out.get_column("x").to_list() == [
        "< 0", "[0, 16)", "[0, 16)", "[16, 85)", ">= 85", ">= 85", None
    ]  # fmt: skip
    assert out.get_column("y").to_list() == [1] * 7


def test_one_edge_makes_two_bins_and_fractional_edges_read_as_written():
    frame = pl.DataFrame({"x": [1, 2, 3]})
    assert binned(frame, {"x": [2.5]}).get_column("x").to_list() == ["< 2.5", "< 2.5", ">= 2.5"]
    assert binned(frame, {}).equals(frame)
