"""Who a python step's table counts (jobs/contributors.py): people, by the identifier
columns of the datasets it reads, never records."""

from __future__ import annotations

import polars as pl
import pytest

from jobs.contributors import UNCOUNTED, identifiers_of, refusal, uncounted, unit_for
from jobs.errors import UnitRefused
from jobs.outputs import TableOutput
from tests.jobs import people

#: As the demo catalog declares them: fire_incidents' unit is incident_id, and it also
#: names the resident at the dwelling.
FOUND = {"fire_incidents": ["incident_id", "resident_id"], "residents": ["resident_id"]}
UNITS = {"fire_incidents": "incident_id", "residents": "resident_id"}


def _table(
    rows: list[str], unit: str | None = None, value: str | None = None, statistic: str = "count"
) -> TableOutput:
    return TableOutput(
        name="t",
        step="mine",
        description="",
        datasets=["residents"],
        rows=rows,
        columns=[],
        value=value,
        statistic=statistic,
        quantile=None,
        cells=pl.DataFrame(),
        unit=unit,
    )


def test_the_identifiers_are_the_descriptors_own():
    assert identifiers_of({"residents": people.source()}) == {"residents": ["resident_id"]}


def test_a_declared_unit_in_the_frame_is_counted_by_before_any_other_identifier():
    only_fire = {"fire_incidents": "incident_id"}
    assert unit_for("t", ["incident_id", "resident_id"], None, FOUND, only_fire) == "incident_id"
    assert unit_for("t", ["resident_id", "ward"], None, FOUND, UNITS) == "resident_id"
    assert unit_for("t", ["ward"], None, FOUND, UNITS) is None
    assert unit_for("t", ["ward"], "resident_id", FOUND, UNITS) == "resident_id"


def test_several_identifiers_and_no_unit_is_refused_saying_which():
    with pytest.raises(UnitRefused) as info:
        unit_for("table 't'", ["incident_id", "resident_id", "ward"], None, FOUND, UNITS)
    message = info.value.render()
    assert "its frame carries several identifier columns (incident_id, resident_id)" in message
    assert "pass unit= naming the one the table counts (e.g. unit='incident_id')" in message


def test_a_table_keyed_by_an_identifier_is_refused_in_tres_words_naming_only_identifiers():
    said = refusal(
        _table(["secret_8675309", "resident_id"], value="incident_id", statistic="mode"), FOUND
    )
    assert said == (
        "resident_id (an identifier column of fire_incidents) is one of its keys, and a table "
        "keyed by an identifier publishes one row per person; incident_id (an identifier "
        "column of fire_incidents) is its value, and a statistic of identifiers is one "
        "person's identifier or means nothing"
    )
    assert "secret" not in said  # a key the code named is never quoted unless tre knows it
    assert refusal(_table(["ward"]), FOUND) == ""
    # A count of the records with an identifier is no statistic of it.
    assert refusal(_table(["ward"], value="incident_id"), FOUND) == ""


def test_a_table_not_counted_by_an_identifier_is_uncounted():
    assert uncounted(_table(["ward"]), FOUND) == UNCOUNTED
    assert uncounted(_table(["ward"], unit="household"), FOUND) == UNCOUNTED
    assert uncounted(_table(["ward"], unit="resident_id"), FOUND) == ""
