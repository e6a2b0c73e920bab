"""The range of values each column holds, noted at ingest for the disclosure check."""

from __future__ import annotations

import decimal

import pyarrow as pa

from tre.models import ColumnInfo, Sensitivity
from tre.secured.domains import MAX_VALUES, ColumnDomains


def _noted(*batches: pa.Table, columns: list[ColumnInfo]) -> dict:
    domains = ColumnDomains()
    domains.start(columns)
    for batch in batches:
        domains.add(batch)
    return domains.record()["columns"]


COLUMNS = [
    ColumnInfo(name="who", type="string", sensitivity=Sensitivity.IDENTIFIER),
    ColumnInfo(name="ltc_count", type="int8"),
    ColumnInfo(name="cost", type="double"),
    ColumnInfo(name="sex", type="string"),
    ColumnInfo(name="has_copd", type="bool"),
    ColumnInfo(name="ward", type="string"),
    ColumnInfo(name="born", type="date32"),
]


def _batch(start: int, ltc: list[int | None], wards: int) -> pa.Table:
    n = len(ltc)
    return pa.table(
        {
            "who": [f"R{start + i}" for i in range(n)],
            "ltc_count": pa.array(ltc, pa.int8()),
            "cost": [float(i) - 1.5 for i in range(n)],
            "sex": ["F", "M"] * (n // 2),
            "has_copd": [True, False] * (n // 2),
            "ward": [f"W{(start + i) % wards}" for i in range(n)],
            "born": pa.array([0] * n, pa.date32()),
        }
    )


def test_each_column_gets_its_range_or_its_values_across_every_batch():
    noted = _noted(
        _batch(0, [0, 3, 2, None], wards=4),
        _batch(4, [8, 1, 1, 1], wards=4),
        columns=COLUMNS,
    )
    assert "who" not in noted  # identifiers: nothing
    assert noted["ltc_count"] == {"nulls": True, "min": 0, "max": 8}
    assert noted["cost"] == {"nulls": False, "min": -1.5, "max": 1.5}
    assert noted["sex"] == {"nulls": False, "values": ["F", "M"]}
    assert noted["has_copd"] == {"nulls": False, "values": [False, True]}
    assert noted["ward"] == {"nulls": False, "values": ["W0", "W1", "W2", "W3"]}
    assert noted["born"] == {"nulls": False}  # dates: not noted


def test_a_column_of_many_values_is_not_noted_at_all():
    rows = MAX_VALUES + 2
    noted = _noted(
        _batch(0, [1] * rows, wards=rows // 2),
        _batch(rows, [1] * rows, wards=rows),
        columns=COLUMNS,
    )
    assert noted["ward"] == {"nulls": False}


def test_a_decimal_range_is_widened_never_narrowed():
    table = pa.table({"x": pa.array([decimal.Decimal("0.1"), decimal.Decimal("2.3")])})
    noted = _noted(table, columns=[ColumnInfo(name="x", type="decimal128(2, 1)")])
    assert noted["x"]["min"] < 0.1 and noted["x"]["max"] > 2.3


def test_an_all_missing_column_has_no_range():
    table = pa.table({"x": pa.array([None, None], pa.int64())})
    assert _noted(table, columns=[ColumnInfo(name="x", type="int64")]) == {"x": {"nulls": True}}
