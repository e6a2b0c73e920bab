"""What a table publishes, as the differencing checks see it, and as the ledger keeps it.

A `PublishedTable` holds, per cell and total, only the count released (null if
suppressed) and whether it is suppressed: no evidence. It is made from a checked table
(`published_view`), from a stored report (`published_from_report`, how the service
builds a ledger entry at release), or from a ledger entry (`PublishedTable.from_json`).
Keys are text, so a table read back from JSON compares with a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from disclosure.check import TableResult
from disclosure.validate import MARGIN, is_magnitude

__all__ = ["PublishedTable", "measure_of", "published_from_report", "published_view"]


@dataclass(frozen=True)
class PublishedTable:
    """What a table publishes, as differencing sees it: per cell and total, the count
    released (null if suppressed). Keys are text, so tables from the ledger compare."""

    name: str
    job_id: int | None  # None: in the request being checked
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    statistic: str
    measure: str
    population: Mapping[str, Any] | None
    rounded_to: int
    threshold: int
    cells: pl.DataFrame  # <keys: String>, margin, count (Float64), suppressed (Boolean)
    # Published with the cell key method's noise: differencing's exact arithmetic does
    # not hold for it (and the noise is its protection against differencing).
    perturbed: bool = False

    @property
    def keys(self) -> list[str]:
        """Row keys, then column keys."""
        return [*self.rows, *self.columns]

    @property
    def label(self) -> str:
        """How a finding names this table."""
        return self.name if self.job_id is None else f"{self.name} (released in job {self.job_id})"

    def to_json(self) -> dict[str, Any]:
        """The ledger entry: JSON with the published counts only (no evidence)."""
        return {
            "format": 1,
            "name": self.name,
            "job_id": self.job_id,
            "rows": list(self.rows),
            "columns": list(self.columns),
            "statistic": self.statistic,
            "measure": self.measure,
            "population": dict(self.population) if self.population is not None else None,
            "rounded_to": self.rounded_to,
            "threshold": self.threshold,
            "perturbed": self.perturbed,
            "cells": {name: self.cells.get_column(name).to_list() for name in self.cells.columns},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], job_id: int | None = None) -> PublishedTable:
        """A ledger entry back as a table (`job_id` overrides the stored one)."""
        keys = [*data["rows"], *data["columns"]]
        schema = {key: pl.String for key in keys} | {
            MARGIN: pl.String,
            "count": pl.Float64,
            "suppressed": pl.Boolean,
        }
        return cls(
            name=str(data["name"]),
            job_id=job_id if job_id is not None else data.get("job_id"),
            rows=tuple(data["rows"]),
            columns=tuple(data["columns"]),
            statistic=str(data["statistic"]),
            measure=str(data["measure"]),
            population=data.get("population"),
            rounded_to=int(data.get("rounded_to", 0)),
            threshold=int(data.get("threshold", 10)),
            cells=pl.DataFrame(data["cells"], schema=schema),
            perturbed=bool(data.get("perturbed", False)),
        )


def published_view(result: TableResult, job_id: int | None = None) -> PublishedTable:
    """What `result` would publish: its cells, and its totals if they are published."""
    cells = result.cells
    if not result.protection_policy.totals:
        cells = cells.filter(pl.col(MARGIN) == "")
    count = "published" if result.statistic == "count" else "published_n"
    frame = cells.select(
        *(pl.col(key).cast(pl.String) for key in result.keys),
        pl.col(MARGIN),
        pl.col(count).cast(pl.Float64).alias("count"),
        (pl.col("suppressed") != "").alias("suppressed"),
    )
    return PublishedTable(
        name=result.name,
        job_id=job_id,
        rows=tuple(result.rows),
        columns=tuple(result.columns),
        statistic=result.statistic,
        measure=measure_of(result.statistic, result.value, result.unit),
        population=result.population,
        rounded_to=result.protection_policy.round_to,
        threshold=result.rules.threshold,
        cells=frame,
        perturbed=bool(result.protection and result.protection.cell_key),
    )


def published_from_report(
    output: Mapping[str, Any], report: Mapping[str, Any], job_id: int | None = None
) -> PublishedTable | None:
    """What a table output of a stored report publishes (None for other outputs): how the
    service builds a ledger entry at release, from the report the checkers saw."""
    if output.get("kind") != "table":
        return None
    rows, columns = list(output.get("rows") or []), list(output.get("columns") or [])
    statistic = str(output.get("statistic"))
    cells = [c for c in output.get("cells") or [] if isinstance(c, Mapping)]
    if output.get("totals") is False:
        cells = [c for c in cells if not c.get(MARGIN)]
    count = "published" if statistic == "count" else "published_n"
    keys = [*rows, *columns]
    data: dict[str, list[Any]] = {
        key: [_key_text((c.get("keys") or {}).get(key)) for c in cells] for key in keys
    }
    data[MARGIN] = [str(c.get(MARGIN) or "") for c in cells]
    data["count"] = [c.get(count) for c in cells]
    data["suppressed"] = [bool(c.get("suppressed")) for c in cells]
    rules = output.get("rules") or report.get("rules") or {}
    return PublishedTable.from_json(
        {
            "name": output.get("name"),
            "rows": rows,
            "columns": columns,
            "statistic": statistic,
            "measure": measure_of(statistic, output.get("value"), output.get("unit")),
            "population": output.get("population"),
            "rounded_to": int(output.get("rounded_to") or 0),
            "threshold": int(rules.get("threshold", 10)),
            "perturbed": bool((output.get("protection_outcome") or {}).get("cell_key")),
            "cells": data,
        },
        job_id=job_id,
    )


def _key_text(value: object) -> str | None:
    """A key's level as text, the way polars casts it (so stored and new tables match)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def measure_of(statistic: str, value: str | None, unit: str | None) -> str:
    """What a table's published counts count: tables compare only when this is equal."""
    if not is_magnitude(statistic):
        # A count's published numbers are records (with a value of its value column, if
        # any), unit-id column or not: the same thing a magnitude table without one counts.
        return "records" if value is None else f"records with a value of {value}"
    return f"{unit or 'records'} with a value of {value}"
