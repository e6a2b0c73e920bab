"""One SQLite database per TRE home: WAL mode, versioned schema, short write transactions.

Every write goes through `Database.write()`, a `BEGIN IMMEDIATE` transaction, so a
state change and its audit event commit together or not at all, and a crash at any
point leaves the database as it was before or after, never between.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tre.audit import write_anchor
from tre.errors import PlatformError
from tre.models import utcnow
from tre.store.migrations import BOOKKEEPING, migrations

SQLITE_HEADER = b"SQLite format 3\x00"
_RESTORE = "restore state.db from backup; tre never edits it outside a transaction"
BUSY_TIMEOUT_MS = 30_000


class Database:
    """A connection to the state store of one TRE home."""

    def __init__(self, path: Path, anchor: Path | None = None) -> None:
        self.path = path
        self.anchor = anchor  # where the newest audit hash is mirrored after each commit
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits early.
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise PlatformError(
                f"the state database {path} cannot be opened: {exc}",
                fix=_RESTORE,
            ) from exc

    @classmethod
    def create(cls, path: Path, anchor: Path | None = None) -> Database:
        """Create and migrate a new database at `path`."""
        path.touch(mode=0o600, exist_ok=False)
        db = cls(path, anchor)
        db.migrate()
        return db

    @classmethod
    def open(cls, path: Path, anchor: Path | None = None) -> Database:
        """Open an existing database and bring its schema up to date.

        The file must already be a migrated tre database: an empty or foreign file is
        refused before SQLite touches it, so a damaged home is never silently rebuilt.
        """
        try:
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise PlatformError(
                f"the state database {path} cannot be opened: {exc.strerror}",
                fix=_RESTORE,
            ) from exc
        if header != SQLITE_HEADER:
            raise PlatformError(
                f"the state database {path} is corrupt: it is not an SQLite database"
                + (" (it is empty)" if not header else ""),
                fix=_RESTORE,
            )
        db = cls(path, anchor)
        if not db.applied():
            db.close()
            raise PlatformError(
                f"the state database {path} is corrupt: it has no tre schema", fix=_RESTORE
            )
        db.migrate()
        return db

    def applied(self) -> list[str]:
        """Names of the migrations this database has had."""
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")}
        if "schema_migrations" in tables:
            return [r[0] for r in self.conn.execute("SELECT name FROM schema_migrations")]
        # Homes made before migrations were named counted them in user_version.
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        return [name for name, _ in migrations()[:version]]

    def migrate(self) -> list[str]:
        """Apply, in name order, every migration not yet applied; returns their names."""
        known = migrations()
        done = set(self.applied())
        unknown = sorted(done - {name for name, _ in known})
        if unknown:
            raise PlatformError(
                f"the state database {self.path} has migrations this tre does not know: "
                f"{', '.join(unknown)}",
                fix="upgrade tre to the version that last wrote this home",
            )
        applied: list[str] = []
        anchor, self.anchor = self.anchor, None  # no audit events here; the table may not exist
        try:
            self._apply(known, done, applied)
        finally:
            self.anchor = anchor
        return applied

    def _apply(self, known: list[tuple[str, str]], done: set[str], applied: list[str]) -> None:
        with self.write() as conn:
            conn.execute(BOOKKEEPING)
            for name in done:
                conn.execute(
                    "INSERT OR IGNORE INTO schema_migrations VALUES (?, ?)",
                    (name, utcnow().isoformat()),
                )
        for name, script in known:
            if name in done:
                continue
            # executescript would COMMIT on its own; run statements one by one instead so a
            # migration and its record are one transaction.
            with self.write() as conn:
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?)", (name, utcnow().isoformat())
                )
            applied.append(name)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or rolls back."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
            if self.anchor is not None:
                write_anchor(self.conn, self.anchor)

    def close(self) -> None:
        self.conn.close()


def _split_sql(script: str) -> Iterator[str]:
    """Statements of a migration script; triggers keep their inner semicolons."""
    buffer: list[str] = []
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip()
        if not stripped:
            continue
        buffer.append(stripped)
        text = "\n".join(buffer)
        if text.endswith(";") and sqlite3.complete_statement(text):
            yield text
            buffer = []
    if "".join(buffer).strip():
        yield "\n".join(buffer)
