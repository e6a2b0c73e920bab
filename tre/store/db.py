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
from tre.store.migrations import MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)
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
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise PlatformError(
                f"the state database {path} cannot be opened: {exc}",
                fix=_RESTORE,
            ) from exc
        if version > SCHEMA_VERSION:
            raise PlatformError(
                f"the state database {path} has schema version {version}, newer than this "
                f"tre understands ({SCHEMA_VERSION})",
                fix="upgrade tre to the version that last wrote this home",
            )

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
        if db.conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            db.close()
            raise PlatformError(
                f"the state database {path} is corrupt: it has no tre schema", fix=_RESTORE
            )
        db.migrate()
        return db

    def migrate(self) -> int:
        """Apply every migration not yet applied; returns the schema version."""
        while (version := self.conn.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
            script = MIGRATIONS[version]
            # executescript would COMMIT on its own; run statements one by one instead so the
            # schema change and the version bump are one transaction.
            with self.write() as conn:
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version + 1}")
        return version

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
