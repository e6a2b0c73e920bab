"""Residents for python-step tests: the demo catalog's own descriptor of `residents`
(its identifier resident_id, its declared unit), cut to a few columns, and a frame of
made-up people to go with it.

`source` is plain data for `StepContext`, enough for tables given a frame; `ingested`
encrypts the frame as a real dataset, for tests that read it (plan mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import yaml

from disclosure import Rules, check_aggregated
from disclosure.check import TableResult
from jobs.outputs import TableOutput
from tre.models import Dataset, DatasetDescriptor
from tre.secured.ingest import ingest
from tre.secured.reader import SecuredSource

DESCRIPTOR = Path(__file__).resolve().parents[2] / "tre" / "demo" / "datasets" / "residents.yaml"
COLUMNS = ["resident_id", "age_band", "sex", "ltc_count"]


def descriptor(columns: Sequence[str] = COLUMNS) -> DatasetDescriptor:
    """The demo descriptor of residents with only `columns` (in its own words)."""
    data = yaml.safe_load(DESCRIPTOR.read_text())
    data["columns"] = [c for c in data["columns"] if c["name"] in columns]
    if data.get("unit") not in columns:
        data.pop("unit", None)
    return DatasetDescriptor.model_validate(data)


def people(count: int, bands: int = 3) -> pl.DataFrame:
    """`count` residents, one row each, spread over `bands` age bands and two sexes."""
    return pl.DataFrame(
        {
            "resident_id": [f"R{i:010x}" for i in range(count)],
            "age_band": [f"band{i % bands}" for i in range(count)],
            "sex": ["F" if i % 2 else "M" for i in range(count)],
            "ltc_count": [i % 4 for i in range(count)],
        },
        schema_overrides={"ltc_count": pl.Int8},
    )


def source(granted: Sequence[str] = COLUMNS) -> SecuredSource:
    """residents as a job granted `granted` sees it, with nowhere to read from."""
    known = descriptor()
    return SecuredSource(
        data_root="/nowhere",
        keys_root="/nowhere",
        dataset="residents",
        version=1,
        files=(),
        columns=tuple((c.name, c.type, c.sensitivity.value) for c in known.columns),
        granted=tuple(granted),
        unit=known.unit or "",
    )


def ingested(frame: pl.DataFrame, *, keys_root: Path, data_root: Path, folder: Path) -> Dataset:
    """Encrypt `frame` as residents v1 under `data_root` (keys at `keys_root`)."""
    path = folder / "residents.parquet"
    frame.write_parquet(path)
    return ingest(
        keys_root=keys_root,
        data_root=data_root,
        name="residents",
        version=1,
        source=path,
        descriptor=descriptor(),
        ingested_by="admin",
    )


def checked(output: TableOutput) -> TableResult:
    """The table checked as tre checks a job's outputs, under the default rules."""
    return check_aggregated(
        output.cells,
        name=output.name,
        rows=output.rows,
        columns=output.columns,
        value=output.value,
        statistic=output.statistic,
        quantile=output.quantile,
        rules=Rules(),
        unit=output.unit,
    )
