"""Fixtures for the secured data layer: a data root in tmp_path, a small source table
with one distinctive value, a dataset ingested from it, and sources granted to read it.
The keys' fixtures (a private key store, grants, a SoftHSM token, a count of unwraps)
are tests/tre/keys/fixtures.py's, handed on here.

Test modules take everything as fixtures rather than importing from this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from tests.tre.keys.fixtures import *  # noqa: F403  the keys' fixtures, handed on
from tests.tre.keys.fixtures import Grant
from tre.models import ColumnInfo, Dataset, DatasetDescriptor, Sensitivity
from tre.secured.ingest import ingest
from tre.secured.reader import SecuredSource

MARKER = "Knowsley-unique-marker"
ROWS = 1000


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """TRE_HOME/data."""
    data = tmp_path / "home" / "data"
    data.mkdir(parents=True, mode=0o700, exist_ok=True)
    return data


@pytest.fixture
def marker() -> str:
    """A value that appears once in the source and must never appear in secured bytes."""
    return MARKER


@pytest.fixture
def source() -> pa.Table:
    """The source table as the data owner exported it."""
    return _source_table()


def _source_table(rows: int = ROWS) -> pa.Table:
    """A small social-care-like table; row 7's ward is the distinctive MARKER."""
    wards = ["Halton", "Prescot", "Huyton", "Kirkby"]
    return pa.table(
        {
            "person_id": [f"P{i:07d}" for i in range(rows)],
            "age": [20 + i % 60 for i in range(rows)],
            "ward": [MARKER if i == 7 else wards[i % 4] for i in range(rows)],
            "cost": [round(i * 1.25, 2) for i in range(rows)],
            "seen": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 365) for i in range(rows)],
            "urgent": [i % 3 == 0 for i in range(rows)],
            "team": [
                "Reablement-Team-North" if i % 2 else "Reablement-Team-South" for i in range(rows)
            ],
        }
    )


@pytest.fixture
def care_descriptor() -> DatasetDescriptor:
    """The declared columns of `source_table`, one of each sensitivity class."""
    return DatasetDescriptor(
        name="care",
        description="Synthetic adult social care contacts",
        columns=[
            ColumnInfo(name="person_id", type="string", sensitivity=Sensitivity.IDENTIFIER),
            ColumnInfo(name="age", type="int64", sensitivity=Sensitivity.QUASI_IDENTIFIER),
            ColumnInfo(name="ward", type="string", sensitivity=Sensitivity.QUASI_IDENTIFIER),
            ColumnInfo(name="cost", type="double", description="Cost in pounds"),
            ColumnInfo(name="seen", type="date32"),
            ColumnInfo(name="urgent", type="bool"),
            ColumnInfo(name="team", type="string"),
        ],
    )


@pytest.fixture
def csv_source(tmp_path: Path) -> Path:
    path = tmp_path / "care.csv"
    pcsv.write_csv(_source_table(), path)
    return path


@pytest.fixture
def care(
    keys_root: Path, data_root: Path, csv_source: Path, care_descriptor: DatasetDescriptor
) -> Dataset:
    """The source ingested as care v1: 4 files of 250 rows, row groups of 100, 100, 50."""
    return ingest(
        keys_root=keys_root,
        data_root=data_root,
        name="care",
        version=1,
        source=csv_source,
        descriptor=care_descriptor,
        ingested_by="admin",
        rows_per_group=100,
        rows_per_file=250,
    )


@pytest.fixture
def source_for(
    data_root: Path, keys_root: Path, grant_token: Grant
) -> Callable[..., SecuredSource]:
    """A SecuredSource of a dataset for a job granted `columns` (with a matching token)."""

    def make(dataset: Dataset, columns: Sequence[str], **grant_options: object) -> SecuredSource:
        return SecuredSource.from_dataset(
            data_root=data_root,
            keys_root=keys_root,
            dataset=dataset,
            granted=columns,
            token=grant_token(dataset.name, columns, **grant_options),
        )

    return make
