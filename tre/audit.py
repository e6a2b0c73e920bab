"""The audit log: append-only, every event hash-chained to the one before it.

Each event's hash covers its contents and the previous event's hash, so editing an
event breaks its own hash, and removing or reordering events breaks the chain. The
newest hash is also written to `audit.head` outside the database, so cutting events
off the end of the log is noticed too. `verify()` says what is wrong and where.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tre.models import utcnow

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: str
    actor: str
    role: str
    action: str
    object: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def _canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def event_hash(
    prev_hash: str, at: str, actor: str, role: str, action: str, obj: str, details: str
) -> str:
    """sha256 over the previous hash and this event's fields (not its position)."""
    text = "\x1f".join((prev_hash, at, actor, role, action, obj, details))
    return hashlib.sha256(text.encode()).hexdigest()


def append(
    conn: sqlite3.Connection,
    *,
    actor: str,
    role: str,
    action: str,
    obj: str,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event; call inside the write transaction that makes the change it records."""
    if not conn.in_transaction:
        raise RuntimeError("audit.append must run inside the transaction of the change it records")
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = utcnow().isoformat()
    text = _canonical(details or {})
    digest = event_hash(prev, at, actor, role, action, obj, text)
    conn.execute(
        "INSERT INTO audit (seq, at, actor, role, action, object, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, role, action, obj, text, prev, digest),
    )
    return AuditEvent(seq, at, actor, role, action, obj, details or {}, prev, digest)


def write_anchor(conn: sqlite3.Connection, anchor: Path) -> None:
    """Record the newest event's position and hash outside the database (atomically)."""
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        return
    # One temporary name per thread: the service commits from many threads at once.
    tmp = anchor.with_name(f"{anchor.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(f"{last[0]} {last[1]}\n")
    os.replace(tmp, anchor)


def events(
    conn: sqlite3.Connection, *, obj: str | None = None, limit: int | None = None
) -> list[AuditEvent]:
    """Events in order, optionally only those about `obj`, optionally the newest `limit`."""
    sql = "SELECT * FROM audit"
    params: list[Any] = []
    if obj is not None:
        sql += " WHERE object = ?"
        params.append(obj)
    sql += " ORDER BY seq DESC" if limit else " ORDER BY seq"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    rows = conn.execute(sql, params).fetchall()
    if limit:
        rows.reverse()
    return [_row_event(r) for r in rows]


def _row_event(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        seq=row["seq"],
        at=row["at"],
        actor=row["actor"],
        role=row["role"],
        action=row["action"],
        object=row["object"],
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


@dataclass
class Verification:
    events: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(conn: sqlite3.Connection, anchor: Path | None = None) -> Verification:
    """Check every event's hash and the chain; report each problem with its position."""
    result = Verification()
    prev_hash, expected_seq = GENESIS, 1
    for row in conn.execute("SELECT * FROM audit ORDER BY seq"):
        result.events += 1
        seq = row["seq"]
        where = f"event #{seq} ({row['action']} on {row['object']} at {row['at']})"
        recomputed = event_hash(
            row["prev_hash"],
            row["at"],
            row["actor"],
            row["role"],
            row["action"],
            row["object"],
            row["details"],
        )
        if recomputed != row["hash"]:
            result.problems.append(f"{where} was edited: its contents do not match its hash")
        if seq != expected_seq:
            missing = f"#{expected_seq}" + (f"..#{seq - 1}" if seq - 1 > expected_seq else "")
            result.problems.append(f"event {missing} removed: the log jumps to #{seq}")
        elif row["prev_hash"] != prev_hash:
            result.problems.append(
                f"{where} does not follow event #{seq - 1}: events were reordered, "
                "removed or inserted here"
            )
        prev_hash, expected_seq = row["hash"], seq + 1
    if anchor is not None:
        _check_anchor(conn, anchor, result)
    return result


def _check_anchor(conn: sqlite3.Connection, anchor: Path, result: Verification) -> None:
    if not anchor.exists():
        if result.events:
            result.problems.append(f"the anchor file {anchor.name} is missing")
        return
    try:
        seq_text, digest = anchor.read_text().split()
        anchor_seq = int(seq_text)
    except ValueError:
        result.problems.append(f"the anchor file {anchor.name} is unreadable")
        return
    row = conn.execute("SELECT hash FROM audit WHERE seq = ?", (anchor_seq,)).fetchone()
    last = conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0] or 0
    if row is None:
        result.problems.append(
            f"the log ends at event #{last} but {anchor.name} records event #{anchor_seq}: "
            "events were removed from the end"
        )
    elif row["hash"] != digest:
        result.problems.append(f"event #{anchor_seq} does not match the hash in {anchor.name}")
    elif anchor_seq < last:
        # A crash between a commit and the anchor write leaves the anchor one step behind.
        result.notes.append(f"{anchor.name} is {last - anchor_seq} event(s) behind the log")
