"""The outputs of an ACRO-compatible session (`disclosure.acro`), and `results.json`.

`finalise` writes what ACRO's `finalise(path, "json")` writes, so the SACRO outputs
viewer and an output checker's habits carry over:

    <path>/results.json         {"version": ..., "results": {uid: record, ...}}
    <path>/<uid>_0.csv          each table (or coefficient table), as shown to the user
    <path>/<custom file>        each custom output, copied
    <path>/checksums/<f>.txt    the SHA-256 of every file above

Each record holds `uid`, `status` ("pass"/"fail"/"review"), `type` ("table",
"regression", "custom"), `properties` ({"method": ...}, and "dof" for a regression),
`files` ([{"name", "sdc"}]), `outcome` (per cell "ok" or the failed rules, as
``{column: {row: text}}``), `command`, `summary`, `timestamp`, `comments` and
`exception`. Fields that cannot be filled as ACRO fills them are listed in
docs/disclosure.md ("Switching from ACRO").

Nothing here imports pandas: tables arrive already written as CSV text.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disclosure.errors import DisclosureInputError

__all__ = ["RESULTS_VERSION", "SDC_RULES", "Record", "Records", "empty_sdc"]

#: Written as `version`: ACRO writes its own package version there; this says the file
#: came from tre's facade (ACRO's `load_records` refuses any version but its own).
RESULTS_VERSION = "tre-disclosure-acro-1"

#: ACRO's rule names in `sdc`, in its order, with the cell flag of `disclosure.rules`
#: each is read from. "missing" has no flag: ACRO checks missing values only when its
#: config turns `check_missing_values` on, which its default does not.
SDC_RULES: dict[str, str | None] = {
    "negative": "negative_values",
    "missing": None,
    "threshold": "fails_threshold",
    "p-ratio": "fails_p_percent",
    "nk-rule": "fails_dominance",
    "all-values-are-same": "same_values",
}


def empty_sdc(suppressed: bool) -> dict[str, Any]:
    """An `sdc` entry with every rule at zero cells, as ACRO starts one."""
    return {
        "summary": {"suppressed": suppressed, **{rule: 0 for rule in SDC_RULES}},
        "cells": {rule: [] for rule in SDC_RULES},
    }


@dataclass
class Record:
    """One output of a session, as ACRO records it."""

    uid: str
    status: str
    output_type: str
    properties: dict[str, Any]
    sdc: dict[str, Any]
    command: str
    summary: str
    outcome: dict[str, dict[str, str]]
    csv: str = ""  # the table as CSV text; empty for a custom output
    source: Path | None = None  # a custom output's file
    comments: list[str] = field(default_factory=list)
    exception: str = ""
    timestamp: str = field(default_factory=lambda: datetime.datetime.now().isoformat())
    result: Any = None  # the disclosure result behind it (TableResult, RegressionResult)

    def __str__(self) -> str:
        return "\n".join(
            [
                f"uid: {self.uid}",
                f"status: {self.status}",
                f"type: {self.output_type}",
                f"properties: {self.properties}",
                f"sdc: {self.sdc}",
                f"command: {self.command}",
                f"summary: {self.summary}",
                f"outcome: {self.outcome}",
                f"timestamp: {self.timestamp}",
                f"comments: {self.comments}",
                f"exception: {self.exception}",
                "",
            ]
        )


class Records:
    """The outputs of a session, named output_0, output_1, ... in order of creation."""

    def __init__(self) -> None:
        self.results: dict[str, Record] = {}
        self._next = 0

    @property
    def next_uid(self) -> str:
        """The uid the next output will get (ACRO never reuses one, even once removed)."""
        return f"output_{self._next}"

    def add(self, **fields: Any) -> Record:
        """Record an output under the next free uid."""
        record = Record(uid=self.next_uid, **fields)
        self._next += 1
        self.results[record.uid] = record
        return record

    def get(self, uid: str) -> Record:
        """The output named `uid`, or a clear error naming the outputs there are."""
        if uid not in self.results:
            known = ", ".join(self.results) or "none yet"
            raise DisclosureInputError(
                f"there is no output named {uid!r}",
                fix=f"use one of the session's outputs ({known}); print_outputs() lists them",
            )
        return self.results[uid]

    def remove(self, uid: str) -> None:
        """Drop an output: it is not written by `finalise`."""
        self.get(uid)
        del self.results[uid]

    def finalise(self, path: Path) -> Path:
        """Write results.json, the tables as CSV, custom files and their checksums into
        the fresh folder `path`; returns the path of results.json."""
        _check_fresh(path)
        path.mkdir(parents=True, exist_ok=True)
        written: dict[str, Any] = {}
        for uid, record in self.results.items():
            names = _write_files(record, path)
            written[uid] = {
                "uid": uid,
                "status": record.status,
                "type": record.output_type,
                "properties": record.properties,
                "files": [{"name": name, "sdc": record.sdc} for name in names],
                "outcome": record.outcome,
                "command": record.command,
                "summary": record.summary,
                "timestamp": record.timestamp,
                "comments": record.comments,
                "exception": record.exception,
            }
        results = path / "results.json"
        results.write_text(
            json.dumps({"version": RESULTS_VERSION, "results": written}, indent=4),
            encoding="utf-8",
        )
        _write_checksums(path)
        return results


def _check_fresh(path: Path) -> None:
    # ACRO refuses to write over a folder already holding outputs: files of an earlier
    # session would be released alongside this one's results.json without a record.
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DisclosureInputError(
            f"cannot finalise into {str(path)!r}: it already exists and is not an empty folder",
            fix="give finalise() a new folder name, or move the old outputs away first",
        )


def _write_files(record: Record, path: Path) -> list[str]:
    if record.output_type == "custom":
        assert record.source is not None  # set by ACRO.custom_output
        shutil.copy(record.source, path / record.source.name)
        return [record.source.name]
    name = f"{record.uid}_0.csv"
    (path / name).write_text(record.csv, encoding="utf-8")
    return [name]


def _write_checksums(path: Path) -> None:
    folder = path / "checksums"
    folder.mkdir()
    for file in sorted(path.iterdir()):
        if file.is_file():
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            (folder / f"{file.name}.txt").write_text(digest, encoding="utf-8")
