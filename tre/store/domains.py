"""Reading and writing the ranges of values noted at ingest (table `dataset_domains`,
migration 009; `tre.secured.domains` says what they hold and why no one is shown them)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

__all__ = ["get_domains", "put_domains"]


def put_domains(conn: sqlite3.Connection, name: str, version: int, record: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO dataset_domains (name, version, body) VALUES (?, ?, ?)",
        (name, version, json.dumps(record, sort_keys=True)),
    )


def get_domains(conn: sqlite3.Connection, name: str, version: int) -> dict[str, Any] | None:
    """The record of one dataset version (None: ingested before ranges were noted)."""
    row = conn.execute(
        "SELECT body FROM dataset_domains WHERE name = ? AND version = ?", (name, version)
    ).fetchone()
    return json.loads(row[0]) if row else None
