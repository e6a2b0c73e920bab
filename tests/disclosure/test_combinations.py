"""Differencing beyond pairs: three or more tables that together count a small group."""

from __future__ import annotations

import polars as pl
import pytest

from disclosure import PublishedTable, check_request, check_table, published_view
from disclosure.combinations import find_combinations
from disclosure.pairs import counts as _counts


def population(*filters, version=1):
    return {
        "datasets": {"residents": version},
        "link": None,
        "filters": list(filters),
        "types": {"ltc_count": "integer"},
    }


@pytest.fixture
def residents() -> pl.DataFrame:
    """Three authorities of 60 residents; in Wirral 3 have 5 long-term conditions, the
    others have 0-3 or 8."""
    rows = []
    for authority in ("Knowsley", "Sefton", "Wirral"):
        middle = 3 if authority == "Wirral" else 0
        rows += [{"authority": authority, "ltc_count": i % 4} for i in range(45)]
        rows += [{"authority": authority, "ltc_count": 8} for _ in range(15 - middle)]
        rows += [{"authority": authority, "ltc_count": 5} for _ in range(middle)]
    return pl.DataFrame(rows)


def _table(residents, name, *filters):
    kept = residents
    for text in filters:
        column, op, value = text.split(" ")
        kept = kept.filter(
            pl.col(column) <= int(value) if op == "<=" else pl.col(column) >= int(value)
        )
    return check_table(kept, name=name, rows=["authority"], population=population(*filters))


def test_three_tables_no_two_of_which_differ_by_little_reveal_the_group_between(residents):
    everyone = _table(residents, "everyone")
    few = _table(residents, "few", "ltc_count <= 3")
    many = _table(residents, "many", "ltc_count >= 8")
    assert {t.status for t in (everyone, few, many)} == {"pass"}
    findings = check_request([everyone, few, many])
    assert [(f.kind, f.status) for f in findings] == [("combination", "fail")]
    (finding,) = findings
    assert set(finding.outputs) == {"everyone", "few", "many"}
    assert finding.cells == ("authority Wirral", "grand total") or finding.cells == (
        "authority Wirral",
    )
    assert "ltc_count >= 4 and <= 7; or ltc_count is missing" in finding.message
    assert "together give the count of a group no table publishes" in finding.message
    # Within the request, all three go to the checkers, who may not approve them all.
    assert {t.status for t in (everyone, few, many)} == {"review"}
    assert all(finding in t.findings for t in (everyone, few, many))


def test_against_released_tables_the_new_one_fails(residents):
    released = []
    for job, table in (
        (1, _table(residents, "everyone")),
        (2, _table(residents, "few", "ltc_count <= 3")),
    ):
        view = published_view(table)
        released.append(PublishedTable(**{**view.__dict__, "job_id": job}))
    many = _table(residents, "many", "ltc_count >= 8")
    findings = check_request([many], released=released)
    assert [(f.kind, f.status, f.jobs) for f in findings] == [("combination", "fail", (None, 1, 2))]
    assert many.status == "fail"


def test_only_released_tables_are_no_new_finding(residents):
    views = [
        PublishedTable(**{**published_view(t).__dict__, "job_id": i})
        for i, t in enumerate(
            (
                _table(residents, "everyone"),
                _table(residents, "few", "ltc_count <= 3"),
                _table(residents, "many", "ltc_count >= 8"),
            ),
            start=1,
        )
    ]
    assert find_combinations(views, lambda t, k: _counts(t, k, {})) == []


def test_a_group_of_ten_or_more_is_no_finding(residents):
    wider = residents.with_columns(
        pl.when(pl.col("ltc_count") == 8).then(5).otherwise(pl.col("ltc_count")).alias("ltc_count")
    )
    # Now 12-15 per authority have 5 conditions and nobody 8: the middle group is large.
    tables = [
        _table(wider, "everyone"),
        _table(wider, "few", "ltc_count <= 3"),
        _table(wider, "many", "ltc_count >= 8"),
    ]
    assert [f for f in check_request(tables) if f.kind == "combination"] == []


def test_a_suppressed_cell_leaves_its_cell_out_not_the_table(residents):
    # With Wirral's count in one table unknown, Wirral cannot be solved; the others can.
    everyone = _table(residents, "everyone")
    few = _table(residents, "few", "ltc_count <= 3")
    many = _table(residents, "many", "ltc_count >= 8")
    views = [published_view(t) for t in (everyone, few, many)]
    cells = views[2].cells.with_columns(
        pl.when(pl.col("authority") == "Wirral")
        .then(None)
        .otherwise(pl.col("count"))
        .alias("count"),
        (pl.col("authority") == "Wirral").fill_null(False).alias("suppressed"),
    )
    views[2] = PublishedTable(**{**views[2].__dict__, "cells": cells})
    found = find_combinations(views, lambda t, k: _counts(t, k, {}))
    assert all(("Wirral",) not in c.cells for c in found)


def test_two_tables_of_one_population_count_once(residents):
    # A second table over everyone (by authority twice) adds no equation: the pair checks
    # cover what two tables show, and no extra combination is reported.
    everyone = _table(residents, "everyone")
    again = _table(residents, "again")
    few = _table(residents, "few", "ltc_count <= 3")
    findings = check_request([everyone, again, few])
    assert [f for f in findings if f.kind == "combination"] == []
