"""One disclosure report per output request: JSON for machines, Markdown and HTML for people.

The report is for the output checkers inside the TRE. It holds each output's values and
the evidence behind each verdict (contributor counts, the share of a cell's total held
by its largest contributors), but never a contributor's own value (the top values stay
out) and never row-level data. `build_report` makes the JSON-able dict; the renderers
(`disclosure.render_markdown`, `disclosure.render_html`) read only that dict, so a stored
report.json renders the same later.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path

import polars as pl

from disclosure.check import FileResult, RegressionResult, Result, TableResult, worst
from disclosure.errors import DisclosureInputError
from disclosure.render_html import render_html
from disclosure.render_markdown import render_markdown
from disclosure.rules import STATUSES, Rules

__all__ = ["REPORT_FORMAT", "build_report", "render_html", "render_markdown", "write_report"]

#: Version of the report's JSON layout; bump it when a key changes meaning.
REPORT_FORMAT = 1

#: Decimals of a dominance share in the report: enough to see how close to the limit a
#: cell is, too few to recover the largest contributors' values from a cell's total.
SHARE_DECIMALS = 3


def build_report(
    results: Sequence[Result],
    *,
    rules: Rules,
    policy: Mapping[str, str],
    context: Mapping[str, object],
) -> dict[str, object]:
    """The report of one output request as a JSON-able dict.

    `policy` names the policy file the rules came from ({"path": ..., "sha256": ...});
    `context` says what was checked (job id, project, author, title ...), as given.
    The overall status is the worst output's; a request with no outputs is "review".
    """
    outputs = [_output(result) for result in results]
    statuses = [str(output["status"]) for output in outputs]
    return {
        "format": REPORT_FORMAT,
        "status": worst(statuses) if outputs else "review",
        "context": {str(key): _jsonable(value) for key, value in context.items()},
        "rules": rules.as_dict(),
        "policy": {str(key): str(value) for key, value in policy.items()},
        "summary": {"outputs": len(outputs), **{s: statuses.count(s) for s in STATUSES}},
        "outputs": outputs,
    }


def write_report(report: Mapping[str, object], directory: Path) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `directory`, each atomically
    (a temporary file, then a rename), so a reader never sees half a report."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        # Compact: a 10,000-cell report is megabytes, and machines read this version.
        text = json.dumps(report, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
    except (TypeError, ValueError) as exc:
        raise DisclosureInputError(
            f"the report cannot be written as JSON: {exc}",
            fix="build the report with build_report(), which makes every value JSON-able",
        ) from exc
    paths = {
        "json": directory / "report.json",
        "markdown": directory / "report.md",
        "html": directory / "report.html",
    }
    _write_atomic(paths["json"], text)
    _write_atomic(paths["markdown"], render_markdown(report))
    _write_atomic(paths["html"], render_html(report))
    return paths


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- outputs ----------------------------------------------------------------------------


def _output(result: Result) -> dict[str, object]:
    head: dict[str, object] = {
        "name": result.name,
        "kind": result.kind,
        "status": result.status,
        "summary": result.summary,
    }
    if isinstance(result, TableResult):
        return head | _table(result)
    if isinstance(result, RegressionResult):
        return head | _regression(result)
    if isinstance(result, FileResult):
        return head | {
            "filename": result.filename,
            "size": result.size,
            "sha256": result.sha256,
            "description": result.description,
        }
    raise DisclosureInputError(  # pragma: no cover - the Result union is closed
        f"cannot report an output of type {type(result).__name__}",
        fix="pass TableResult, RegressionResult or FileResult objects",
    )


def _table(result: TableResult) -> dict[str, object]:
    keys = [*result.rows, *result.columns]
    # Only these columns reach the report: `top` and `sum` stay behind.
    cells = result.cells.select(
        *keys,
        "value",
        "n",
        "records",
        pl.col("dominance_share").round(SHARE_DECIMALS),
        "negative",
        "missing",
        "status",
        "reason",
    )
    return {
        "rows": list(result.rows),
        "columns": list(result.columns),
        "statistic": result.statistic,
        "value": result.value,
        "quantile": result.quantile,
        "counts": dict(result.counts),
        "cells": [
            {
                "keys": {key: _jsonable(cell[key]) for key in keys},
                "value": _number(cell["value"]),
                "n": cell["n"],
                "records": cell["records"],
                "dominance_share": _number(cell["dominance_share"]),
                "negative": cell["negative"],
                "missing": cell["missing"],
                "status": cell["status"],
                "reason": cell["reason"],
            }
            for cell in cells.iter_rows(named=True)
        ],
    }


def _regression(result: RegressionResult) -> dict[str, object]:
    return {
        "model": result.model,
        "n_obs": result.n_obs,
        "df_resid": result.df_resid,
        "min_dof": result.min_dof,
        "reasons": list(result.reasons),
        "coefficients": [
            {column: _jsonable(value) for column, value in row.items()}
            for row in result.coefficients.iter_rows(named=True)
        ],
    }


def _number(value: object) -> float | int | None:
    """A number JSON can hold: NaN and infinities (not valid JSON) become null."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _jsonable(value: object) -> object:
    """`value` as JSON can hold it: numbers and strings as they are, dates as ISO text,
    anything else as its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
