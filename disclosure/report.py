"""One disclosure report per output request: JSON for machines, Markdown and HTML for people.

The report is for the output checkers inside the TRE. It holds each output's values,
how each cell is published (suppressed, rounded), and the evidence behind each verdict
(contributor counts, the share of a cell's total held by its largest contributors, the
p% ratio), but never a contributor's own value (the top values and sums stay out) and
never row-level data. It also holds the differencing findings, each naming the two
outputs concerned. `build_report` makes the JSON-able dict; the renderers
(`disclosure.render_markdown`, `disclosure.render_html`) read only that dict, so a stored
report.json renders the same later.

What a researcher is shown is `disclosure.release.researcher_summary`, which quotes no
evidence.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl

from disclosure.check import FileResult, RegressionResult, Result, TableResult, worst
from disclosure.differencing import Finding
from disclosure.errors import DisclosureInputError
from disclosure.protection import Protection
from disclosure.render_html import render_html
from disclosure.render_markdown import render_markdown
from disclosure.rules import STATUSES, Rules
from disclosure.validate import MARGIN

__all__ = ["REPORT_FORMAT", "build_report", "render_html", "render_markdown", "write_report"]

#: Version of the report's JSON layout; bump it when a key changes meaning.
#: 2: totals, protection, differencing, per-output rules, several policy files.
REPORT_FORMAT = 2

#: Decimals of a dominance share in the report: enough to see how close to the limit a
#: cell is, too few to recover the largest contributors' values from a cell's total.
SHARE_DECIMALS = 3


def build_report(
    results: Sequence[Result],
    *,
    rules: Rules,
    policy: Mapping[str, object],
    context: Mapping[str, object],
    protection: Protection | None = None,
    findings: Sequence[Finding] = (),
) -> dict[str, object]:
    """The report of one output request as a JSON-able dict.

    `policy` says where the rules came from: {"files": [{"layer", "path", "sha256"}, ...],
    "notes": [...]} (or the single {"path", "sha256"} of a plain policy file);
    `context` says what was checked (job id, project, author, title ...), as given;
    `rules` and `protection` are the request's own (an output checked under stricter
    dataset rules records its own). `findings` are the differencing findings
    (`disclosure.differencing.check_request`). The overall status is the worst output's;
    a request with no outputs is "review".
    """
    findings = list(findings)
    protection = protection or Protection()
    outputs = [_output(result, rules, protection, findings) for result in results]
    statuses = [str(output["status"]) for output in outputs]
    return {
        "format": REPORT_FORMAT,
        "status": worst(statuses) if outputs else "review",
        "context": {str(key): _jsonable(value) for key, value in context.items()},
        "rules": rules.as_dict(),
        "protection": protection.as_dict(),
        "policy": _jsonable(dict(policy)),
        "summary": {
            "outputs": len(outputs),
            **{s: statuses.count(s) for s in STATUSES},
            "protected": sum(bool(o.get("protection_outcome")) for o in outputs),
            "differencing": len(findings),
        },
        "differencing": [
            {"id": index + 1, **finding.as_dict()} for index, finding in enumerate(findings)
        ],
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


def _output(
    result: Result, rules: Rules, protection: Protection, findings: list[Finding]
) -> dict[str, object]:
    head: dict[str, object] = {
        "name": result.name,
        "kind": result.kind,
        "status": result.status,
        "check_status": result.check_status or result.status,
        "summary": result.summary,
    }
    if not isinstance(result, FileResult) and result.advisory:
        head["advisory"] = result.advisory
    if not isinstance(result, FileResult) and result.provenance:
        head["provenance"] = result.provenance
    if isinstance(result, TableResult):
        return head | _table(result, rules, protection, findings)
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


def _table(
    result: TableResult, rules: Rules, protection: Protection, findings: list[Finding]
) -> dict[str, object]:
    keys = [*result.rows, *result.columns]
    # Only these columns reach the report: `top` and `sum` stay behind.
    cells = result.cells.select(
        *keys,
        MARGIN,
        "value",
        "n",
        "records",
        pl.col("dominance_share").round(SHARE_DECIMALS),
        pl.col("p_ratio").round(SHARE_DECIMALS),
        "negative",
        "missing",
        "empty_cell",
        "no_value",
        "status",
        "reason",
        "suppressed",
        "published",
        "published_n",
        "interval_low",
        "interval_high",
    )
    outcome = result.protection
    table: dict[str, object] = {
        "rows": list(result.rows),
        "columns": list(result.columns),
        "statistic": result.statistic,
        "value": result.value,
        "quantile": result.quantile,
        "unit": result.unit,
        "population": _jsonable(result.population),
        "counts": dict(result.counts),
        # Records with no value (not contributors), in the cells: for the checkers only,
        # since a small number of them could itself say something about people.
        "missing": int(result.inner().get_column("missing").sum() or 0),
        # Cells with no records, and cells whose value is missing (flags, not rules).
        "empty_cells": int(result.inner().get_column("empty_cell").sum() or 0),
        "no_value_cells": int(result.inner().get_column("no_value").sum() or 0),
        "protection_outcome": (
            outcome.as_dict() if outcome and (outcome.suppressed or outcome.cell_key) else None
        ),
        "rounded_to": result.protection_policy.round_to,
        "totals": result.protection_policy.totals,
        "findings": [i + 1 for i, f in enumerate(findings) if result.name in f.new_outputs],
        "cells": [_cell(cell, keys) for cell in cells.iter_rows(named=True)],
    }
    # Rules that differ from the request's (a stricter dataset policy) are recorded.
    if result.rules != rules:
        table["rules"] = result.rules.as_dict()
    if result.protection_policy != protection:
        table["protection"] = result.protection_policy.as_dict()
    return table


def _cell(cell: Mapping[str, Any], keys: list[str]) -> dict[str, object]:
    """One cell or total as the report holds it."""
    return {
        "keys": {key: _jsonable(cell[key]) for key in keys},
        "margin": cell[MARGIN],
        "value": _number(cell["value"]),
        "n": cell["n"],
        "records": cell["records"],
        "dominance_share": _number(cell["dominance_share"]),
        "p_ratio": _number(cell["p_ratio"]),
        "negative": cell["negative"],
        "missing": cell["missing"],
        "empty_cell": cell["empty_cell"],
        "no_value": cell["no_value"],
        "status": cell["status"],
        "reason": cell["reason"],
        "suppressed": cell["suppressed"],
        "published": _number(cell["published"]),
        "published_n": cell["published_n"],
        # What the published table still allows a suppressed count to be: [low, high],
        # high null when nothing bounds it (disclosure.intervals).
        **(
            {"interval": [_number(cell["interval_low"]), _number(cell["interval_high"])]}
            if cell["suppressed"] and cell["interval_low"] is not None
            else {}
        ),
    }


def _regression(result: RegressionResult) -> dict[str, object]:
    return {
        "level_counts": _jsonable(result.level_counts),
        "value_counts": _jsonable(result.value_counts),
        "few_values": result.few_values,
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
