"""The audit log: append-only, every event hash-chained to the one before it.

Each event's hash covers its contents and the previous event's hash, so editing an
event breaks its own hash, and removing or reordering events breaks the chain. The
newest hash is also written to `audit.head` outside the database, so cutting events
off the end of the log is noticed too. `verify()` says what is wrong and where.

The chain is keyed: an event's hash is an HMAC-SHA256 under the home's audit key
(`MasterKeys.audit_mac`, held with the master keys, locally or in an HSM), so someone
who can write state.db and audit.head but not the key cannot rebuild a clean chain
after an edit. Each event records the scheme that made its hash:

    sha256   plain sha256, events made before the chain was keyed (still verified)
    hmac1    HMAC-SHA256 with version 1 of the audit key

A keyed chain is never downgraded: an event after a keyed one must be keyed, and a
check that holds the key wants the newest event keyed (`tre.store` keys an old home's
chain with one event when it adds the scheme column). The MAC reaches `append` through
the connection: `tre.store.Database` opens an `AuditConnection` carrying its home's
`keyed_with(settings)`. When a home's key system changes (`tre keys configure`),
`rekey` pins every earlier event by a digest in the first event keyed by the new
system, so the old key is not needed to verify them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tre.errors import PlatformError
from tre.keys.keysystems import open_master_keys
from tre.keys.masterkeys import KmsSettings
from tre.models import utcnow

GENESIS = "0" * 64
SHA256 = "sha256"
HMAC1 = "hmac1"
SCHEMES = (SHA256, HMAC1)
#: In the details of the event that moved the chain to another key system: the pin.
REKEYED = "audit_rekeyed"

#: How an event's hash is keyed: HMAC-SHA256 of the bytes with the audit key.
Mac = Callable[[bytes], bytes]


class AuditConnection(sqlite3.Connection):
    """A connection that carries its home's audit MAC (`tre.store.Database` makes them)."""

    audit_mac: Mac | None = None


def mac_of(conn: sqlite3.Connection) -> Mac | None:
    """The audit MAC `conn` keys events with, or None (a bare database, in tests)."""
    return conn.audit_mac if isinstance(conn, AuditConnection) else None


def use_key(conn: sqlite3.Connection, mac: Mac | None) -> None:
    """Key the events appended through `conn` with `mac` from now on."""
    if not isinstance(conn, AuditConnection):
        raise RuntimeError("only a tre.store connection can carry an audit key")
    conn.audit_mac = mac


def keyed_with(settings: KmsSettings) -> Mac:
    """The audit MAC of the home whose master keys `settings` name.

    The key system is looked up per event (`open_master_keys` caches its one instance),
    so a connection never holds a key system that was closed after a fork.
    """

    def mac(data: bytes) -> bytes:
        return open_master_keys(settings).audit_mac(data)

    return mac


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

    @property
    def meaning(self) -> str:
        """The action as this tre names it. Events are never rewritten, so an older name
        stays as written: before issue 27 a job refused at submission was audited as
        `job.rejected` (from `submitted`), which is `job.refused` now."""
        if self.action == "job.rejected" and self.details.get("from") == "submitted":
            return "job.refused"
        return self.action

    @property
    def shown_action(self) -> str:
        """The action for people: as written, with its meaning when that has a new name."""
        if self.meaning == self.action:
            return self.action
        return f"{self.action} (now {self.meaning})"


def _canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def _text(
    prev_hash: str, at: str, actor: str, role: str, action: str, obj: str, details: str
) -> str:
    return "\x1f".join((prev_hash, at, actor, role, action, obj, details))


def event_hash(
    prev_hash: str, at: str, actor: str, role: str, action: str, obj: str, details: str
) -> str:
    """sha256 over the previous hash and this event's fields (not its position)."""
    return hashlib.sha256(
        _text(prev_hash, at, actor, role, action, obj, details).encode()
    ).hexdigest()


def keyed_hash(
    mac: Mac, prev_hash: str, at: str, actor: str, role: str, action: str, obj: str, details: str
) -> str:
    """The hmac1 hash: the audit key's HMAC over the scheme, the previous hash and the
    event's fields."""
    text = _text(prev_hash, at, actor, role, action, obj, details)
    return mac(f"{HMAC1}\x1f{text}".encode()).hex()


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
    last = conn.execute("SELECT seq, hash, scheme FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    mac = mac_of(conn)
    if mac is None and last is not None and last[2] != SHA256:
        raise RuntimeError(
            "this connection has no audit key but the audit log is keyed: open the store "
            "with Database.for_home()"
        )
    at = utcnow().isoformat()
    text = _canonical(details or {})
    if mac is None:
        scheme, digest = SHA256, event_hash(prev, at, actor, role, action, obj, text)
    else:
        scheme, digest = HMAC1, keyed_hash(mac, prev, at, actor, role, action, obj, text)
    conn.execute(
        "INSERT INTO audit (seq, at, actor, role, action, object, details, prev_hash, hash, "
        "scheme) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, role, action, obj, text, prev, digest, scheme),
    )
    return AuditEvent(seq, at, actor, role, action, obj, details or {}, prev, digest)


def rekey(conn: sqlite3.Connection, mac: Mac) -> dict[str, Any]:
    """Move the chain to another audit key (the home's key system is changing).

    Checks the log under the current key, then keys `conn` with `mac`; returns the pin
    to put in the details of the event that records the change (in this transaction):
    the digest of every earlier event, so verifying them never needs the old key.
    """
    if not conn.in_transaction:
        raise RuntimeError("audit.rekey must run inside the transaction of the change")
    result = verify(conn)
    if not result.ok:
        raise PlatformError(
            "the audit log does not verify, so its key cannot be moved to another key system",
            reasons=result.problems,
            fix="find out what changed the log ('tre audit verify'), restore state.db from "
            "a backup that verifies, then configure the key system again",
        )
    rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    use_key(conn, mac)
    return {REKEYED: {"through": len(rows), "sha256": _segment_digest(rows)}}


def _segment_digest(rows: list[sqlite3.Row]) -> str:
    """sha256 over every field of `rows`, hashes and schemes included."""
    digest = hashlib.sha256()
    for row in rows:
        fields = (str(row["seq"]), row["scheme"], row["hash"], row["prev_hash"], row["at"])
        rest = (row["actor"], row["role"], row["action"], row["object"], row["details"])
        digest.update("\x1f".join((*fields, *rest)).encode() + b"\x1e")
    return digest.hexdigest()


def write_anchor(conn: sqlite3.Connection, anchor: Path) -> None:
    """Record the newest event's position and hash outside the database (atomically)."""
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        return
    # One temporary name per thread: the service commits from many threads at once.
    tmp = anchor.with_name(f"{anchor.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        # The TRE's alone: a home whose jobs reach their own folders lets job users pass
        # through TRE_HOME (tre/service/sandboxing.py: reach_for_job_user).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{last[0]} {last[1]}\n")
        os.replace(tmp, anchor)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not keep the half-written file
        raise


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


def verify(
    conn: sqlite3.Connection, anchor: Path | None = None, *, mac: Mac | None = None
) -> Verification:
    """Check every event's hash (under its scheme) and the chain; report each problem
    with its position. Keyed events are checked with `mac`, else the connection's."""
    result = Verification()
    mac = mac or mac_of(conn)
    rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    pinned = _check_pin(rows, mac, result)
    prev_hash, expected_seq = GENESIS, 1
    keyed_at: int | None = None  # the first keyed event
    unchecked = False
    for index, row in enumerate(rows):
        result.events += 1
        seq, scheme = row["seq"], row["scheme"]
        where = f"event #{seq} ({row['action']} on {row['object']} at {row['at']})"
        fields = _fields(row)
        if scheme not in SCHEMES:
            result.problems.append(f"{where} names an unknown hash scheme {scheme!r}")
        elif scheme == SHA256 and keyed_at is not None:
            result.problems.append(
                f"{where} is not keyed although event #{keyed_at} before it is: the chain "
                "was rebuilt from here without the TRE's audit key"
            )
        elif scheme == SHA256:
            if event_hash(*fields) != row["hash"]:
                result.problems.append(f"{where} was edited: its contents do not match its hash")
        else:
            keyed_at = keyed_at or seq
            if index < pinned:
                pass  # keyed by an earlier key system; the pin covers it
            elif mac is None:
                unchecked = True
            elif not hmac.compare_digest(keyed_hash(mac, *fields), row["hash"]):
                result.problems.append(
                    f"{where} was edited or forged: its hash is not the audit key's MAC of "
                    "its contents (the chain was changed without the TRE's audit key)"
                )
        if seq != expected_seq:
            missing = f"#{expected_seq}" + (f"..#{seq - 1}" if seq - 1 > expected_seq else "")
            result.problems.append(f"event {missing} removed: the log jumps to #{seq}")
        elif row["prev_hash"] != prev_hash:
            result.problems.append(
                f"{where} does not follow event #{seq - 1}: events were reordered, "
                "removed or inserted here"
            )
        prev_hash, expected_seq = row["hash"], seq + 1
    if unchecked:
        result.problems.append(
            f"keyed events (from #{keyed_at}) cannot be checked without the home's audit key"
        )
    elif mac is not None and rows and rows[-1]["scheme"] == SHA256 and keyed_at is None:
        # The store keys a chain as soon as it can, so an unkeyed newest event means the
        # whole chain was rebuilt without the key.
        result.problems.append(
            f"the newest event #{rows[-1]['seq']} is not keyed: the log was rebuilt without "
            "the TRE's audit key, or written by a tre that does not key it"
        )
    if anchor is not None:
        _check_anchor(conn, anchor, result)
    return result


def _fields(row: sqlite3.Row) -> tuple[str, str, str, str, str, str, str]:
    """What an event's hash covers, in the order `event_hash` takes it."""
    return (
        row["prev_hash"],
        row["at"],
        row["actor"],
        row["role"],
        row["action"],
        row["object"],
        row["details"],
    )


def _check_pin(rows: list[sqlite3.Row], mac: Mac | None, result: Verification) -> int:
    """How many leading events the newest genuine re-keying event pins (0 if none), and
    a problem if they changed since."""
    for index in range(len(rows) - 1, -1, -1):
        row = rows[index]
        if row["scheme"] != HMAC1 or REKEYED not in row["details"]:
            continue
        pin = json.loads(row["details"]).get(REKEYED)
        if (
            mac is None
            or not isinstance(pin, dict)
            or not hmac.compare_digest(keyed_hash(mac, *_fields(row)), row["hash"])
        ):
            continue  # not genuine: the event itself is reported as forged
        through = int(pin.get("through", 0))
        if through != index or _segment_digest(rows[:through]) != pin.get("sha256"):
            result.problems.append(
                f"events #1..#{through}, keyed before the key system changed (event "
                f"#{row['seq']} at {row['at']}), were changed since"
            )
        return min(through, index)
    return 0


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
