"""One SQLite database per TRE home: WAL mode, versioned schema, short write transactions.

Every write goes through `Database.write()`, a `BEGIN IMMEDIATE` transaction, so a
state change and its audit event commit together or not at all, and a crash at any
point leaves the database as it was before or after, never between.

A home's database is opened with `Database.for_home()`: its connection carries the
home's audit MAC (`tre.audit.keyed_with`), which keys every event appended through it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tre import audit
from tre.errors import PlatformError
from tre.home import Home
from tre.models import utcnow
from tre.store.migrations import BOOKKEEPING, migrations

log = logging.getLogger("tre.store")

SQLITE_NOTADB = 26  # "file is not a database"
_RESTORE = "restore state.db from backup; tre never edits it outside a transaction"
BUSY_TIMEOUT_MS = 30_000
#: The migration that made the audit chain keyed; a home's chain is keyed right after it.
AUDIT_SCHEME_MIGRATION = "006_audit_scheme"


class Database:
    """A connection to the state store of one TRE home."""

    def __init__(
        self, path: Path, anchor: Path | None = None, *, audit_mac: audit.Mac | None = None
    ) -> None:
        self.path = path
        self.anchor = anchor  # where the newest audit hash is mirrored after each commit
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits early.
            self.conn: sqlite3.Connection = sqlite3.connect(
                path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                factory=audit.AuditConnection,
            )
            audit.use_key(self.conn, audit_mac)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) == SQLITE_NOTADB:
                raise PlatformError(
                    f"the state database {path} is corrupt: it is not an SQLite database",
                    fix=_RESTORE,
                ) from exc
            raise PlatformError(
                f"the state database {path} cannot be opened: {exc}",
                fix=_RESTORE,
            ) from exc

    @classmethod
    def for_home(cls, home: Home, *, create: bool = False, migrate: bool = True) -> Database:
        """The state store of `home`, its audit events keyed with the home's audit key:
        created, opened and migrated, or (`migrate=False`) just connected."""
        mac = audit.keyed_with(home.kms_settings())
        if create:
            return cls.create(home.db_path, home.audit_head, audit_mac=mac)
        if migrate:
            return cls.open(home.db_path, home.audit_head, audit_mac=mac)
        return cls(home.db_path, home.audit_head, audit_mac=mac)

    @classmethod
    def create(
        cls, path: Path, anchor: Path | None = None, *, audit_mac: audit.Mac | None = None
    ) -> Database:
        """Create and migrate a new database at `path`."""
        path.touch(mode=0o600, exist_ok=False)
        db = cls(path, anchor, audit_mac=audit_mac)
        db.migrate()
        return db

    @classmethod
    def open(
        cls, path: Path, anchor: Path | None = None, *, audit_mac: audit.Mac | None = None
    ) -> Database:
        """Open an existing database and bring its schema up to date.

        The file must already be a migrated tre database: an empty or foreign file is
        refused before SQLite touches it, so a damaged home is never silently rebuilt.
        """
        # Never open state.db beside SQLite, not even to read its header: closing any
        # descriptor of a file drops every POSIX lock this process holds on it, SQLite's
        # among them, and another process's connection would then take itself for the
        # last one and checkpoint and delete the WAL under this process's connections
        # (a job's check runs in a process of its own). An empty file is told by its
        # size; a foreign one by SQLite itself (SQLITE_NOTADB, below).
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise PlatformError(
                f"the state database {path} cannot be opened: {exc.strerror}",
                fix=_RESTORE,
            ) from exc
        if size == 0:
            raise PlatformError(
                f"the state database {path} is corrupt: it is not an SQLite database (it is empty)",
                fix=_RESTORE,
            )
        db = cls(path, anchor, audit_mac=audit_mac)
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
        if AUDIT_SCHEME_MIGRATION in applied:
            self._key_audit_chain()
        return applied

    def _key_audit_chain(self) -> None:
        """Key an existing chain once, as soon as its table can say so: the one keyed
        event pins every sha256 event before it, and from then on the newest must be keyed."""
        if audit.mac_of(self.conn) is None:
            return  # a bare database (tests): its next keyed write does it
        last = self.conn.execute("SELECT scheme FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        if last is None or last[0] != audit.SHA256:
            return
        with self.write() as conn:
            audit.append(
                conn,
                actor="tre",
                role="system",
                action="audit.keyed",
                obj="audit",
                details={"scheme": audit.HMAC1, "before": "sha256"},
            )

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
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # SQLite may have rolled back a failed COMMIT itself
                self.conn.execute("ROLLBACK")
            raise
        if self.anchor is not None:
            self._write_anchor(self.anchor)

    def _write_anchor(self, anchor: Path) -> None:
        # The committed transaction is the truth; the anchor only mirrors it. Failing to
        # mirror it (a full disk) must not undo or hide the commit: the next successful
        # write rewrites it, and until then `verify` notes that it is behind.
        try:
            audit.write_anchor(self.conn, anchor)
        except OSError as exc:
            log.warning(
                "the audit anchor %s was not updated after a commit (%s); the change is "
                "saved, and the anchor is rewritten after the next successful write. "
                "Free space on the TRE home's disk.",
                anchor,
                exc.strerror or type(exc).__name__,
            )

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
