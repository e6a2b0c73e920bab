"""Every version of every dataset (repo.list_datasets gives only the newest of each).

Key rotation and `tre dataset verify` must reach files of old versions too: jobs may
still read them, and they are encrypted with the same master keys.
"""

from __future__ import annotations

import sqlite3

from tre.models import Dataset

__all__ = ["dataset_versions"]


def dataset_versions(conn: sqlite3.Connection, name: str | None = None) -> list[Dataset]:
    """All versions of dataset `name` (or of every dataset), by name then version."""
    if name is None:
        rows = conn.execute("SELECT body FROM datasets ORDER BY name, version").fetchall()
    else:
        rows = conn.execute(
            "SELECT body FROM datasets WHERE name = ? ORDER BY version", (name,)
        ).fetchall()
    return [Dataset.model_validate_json(r[0]) for r in rows]
