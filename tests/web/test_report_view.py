"""Laying out a disclosure report for the review page, whatever the report holds."""

from __future__ import annotations

from tre.web.report_view import cell_flags, number, output_views, table_view


def cell(la: str, age: str, value: object, status: str = "pass", **extra: object) -> dict:
    return {
        "keys": {"la": la, "age": age},
        "value": value,
        "n": value,
        "status": status,
        "reason": "" if status == "pass" else f"{value} records, below the threshold of 10",
        **extra,
    }


def test_a_two_key_table_is_a_cross_tab_with_marked_cells_and_notes():
    output = {
        "kind": "table",
        "rows": ["la"],
        "columns": ["age"],
        "statistic": "count",
        "cells": [
            cell("Halton", "0-15", 120.0),
            cell("Halton", "16+", 3.0, "fail"),
            cell("Wirral", "0-15", 55.0),
        ],
    }
    table = table_view(output)
    assert table.crosstab and table.header == ["la \\ age", "0-15", "16+"]
    halton, wirral = table.rows
    assert [c.text for c in halton] == ["Halton", "120", "3"]
    assert halton[2].flags == ["fail"] and halton[2].note == 1
    assert wirral[2].text == "–"  # a missing cell is shown as such, not as zero
    note = table.notes[0]
    assert note.label == "la Halton, age 16+"
    assert note.reasons == ["3.0 records, below the threshold of 10"]


def test_other_tables_are_lists_of_cells():
    output = {
        "kind": "table",
        "rows": ["la", "age"],
        "columns": [],
        "statistic": "mean",
        "cells": [cell("Halton", "0-15", 0.01234), cell("Wirral", None, 12.5, "review")],
    }
    table = table_view(output)
    assert not table.crosstab and table.header == ["la", "age", "mean", "contributors"]
    assert [c.text for c in table.rows[0][:3]] == ["Halton", "0-15", "0.0123"]
    assert [c.text for c in table.rows[1][:3]] == ["Wirral", "(missing)", "12.50"]
    assert table.rows[1][2].flags == ["review"]


def test_suppression_and_rounding_are_marked_with_their_reasons():
    flags, reasons = cell_flags(
        {"status": "fail", "reason": "2 records", "suppressed": True, "suppression": "primary"}
    )
    assert flags == ["fail", "suppressed"] and reasons == ["suppressed (primary)", "2 records"]
    flags, reasons = cell_flags(
        {"status": "pass", "rounded_value": 15, "rounding_reason": "rounded to base 5"}
    )
    assert flags == ["rounded"] and reasons == ["rounded to base 5"]
    layout = table_view(
        {
            "rows": ["la"],
            "columns": ["age"],
            "statistic": "count",
            "cells": [cell("Halton", "0-15", 13.0, rounded_value=15)],
        }
    )
    assert layout.rows[0][1].text == "13 → 15"


def test_a_broken_or_unknown_report_still_renders():
    views = output_views(
        {
            "outputs": [
                {"name": "odd", "kind": "table", "rows": "la", "cells": "not a list"},
                {"name": "model", "kind": "regression", "coefficients": [{"term": "x"}]},
                {"name": "note", "kind": "file", "filename": "note.txt", "size": 12},
                "not an output",
            ]
        }
    )
    assert set(views) == {"odd", "model", "note"}
    assert views["odd"].table is not None and views["odd"].table.rows == []
    assert views["model"].table is not None and views["model"].table.rows[0][1].text == "–"
    assert ("file", "note.txt") in views["note"].facts
    assert output_views({}) == {}


def test_numbers_read_as_people_expect():
    assert number(1234.0, "count") == "1,234"
    assert number(2.5) == "2.50" and number(0.000123) == "0.000123" and number(None) == "–"
    assert number(True) == "True" and number("n/a") == "n/a"


def test_empty_cells_and_cells_with_no_value_are_marked_and_counted():
    """Issue 14's flags reach the review page: each cell's mark, and the table's counts."""
    flags, _ = cell_flags({"status": "pass", "value": 0, "empty_cell": True, "no_value": False})
    assert flags == ["empty"]
    flags, reasons = cell_flags(
        {"status": "review", "reason": "none of its 3 records has a value", "no_value": True}
    )
    assert flags == ["review", "no_value"] and reasons == ["none of its 3 records has a value"]
    assert cell_flags({"status": "pass", "empty_cell": "yes"})[0] == []  # only a real flag
    views = output_views(
        {
            "outputs": [
                {
                    "name": "t",
                    "kind": "table",
                    "status": "review",
                    "rows": ["la"],
                    "columns": [],
                    "statistic": "mean",
                    "cells": [],
                    "empty_cells": 2,
                    "no_value_cells": 0,
                }
            ]
        }
    )
    assert views["t"].facts == [("empty cells (no records)", "2")]
