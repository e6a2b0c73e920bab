import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from tre import audit
from tre.errors import PlatformError
from tre.store.db import Database
from tre.store.migrations import migrations


def test_new_database_is_migrated_and_in_wal_mode(tmp_path):
    db = Database.create(tmp_path / "state.db")
    assert db.applied() == [name for name, _ in migrations()]
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "state.db").stat().st_mode & 0o077 == 0


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    db = Database.create(tmp_path / "state.db")
    with pytest.raises(RuntimeError), db.write() as conn:
        audit.append(conn, actor="a", role="admin", action="x", obj="o")
        raise RuntimeError("crash in the middle")
    assert db.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0


def test_audit_rows_cannot_be_updated_or_deleted_through_sql(tmp_path):
    db = Database.create(tmp_path / "state.db")
    with db.write() as conn:
        audit.append(conn, actor="a", role="admin", action="x", obj="o")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), db.write() as conn:
        conn.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), db.write() as conn:
        conn.execute("DELETE FROM audit")


def test_a_newer_schema_is_refused_with_a_fix(tmp_path):
    db = Database.create(tmp_path / "state.db")
    db.conn.execute("INSERT INTO schema_migrations VALUES ('999_from_the_future', 'x')")
    db.close()
    with pytest.raises(PlatformError, match="newer") as info:
        Database.open(tmp_path / "state.db")
    assert info.value.fix


def test_a_corrupt_database_is_a_platform_error(tmp_path):
    (tmp_path / "state.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PlatformError, match="corrupt"):
        Database.open(tmp_path / "state.db")


def test_concurrent_writers_serialise_without_losing_events(tmp_path):
    path = tmp_path / "state.db"
    Database.create(path).close()

    def writer(n):
        db = Database.open(path)
        for _ in range(25):
            with db.write() as conn:
                audit.append(conn, actor=f"w{n}", role="system", action="tick", obj="o")
        db.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db = Database.open(path)
    result = audit.verify(db.conn)
    assert result.ok, result.problems
    assert result.events == 100


def test_an_empty_database_file_is_refused_not_silently_rebuilt(tmp_path):
    (tmp_path / "state.db").touch()
    with pytest.raises(PlatformError, match="empty"):
        Database.open(tmp_path / "state.db")
    assert (tmp_path / "state.db").stat().st_size == 0


def _open_and_close(path: str) -> None:
    """Another process's connection: opened, read, closed (as a job's check does)."""
    Database.open(Path(path)).close()


def test_another_process_closing_never_takes_the_wal_from_under_this_one(tmp_path):
    # Reading state.db's header through a file of its own once dropped every lock this
    # process held on it: another process closing its connection then took itself for
    # the last one, and deleted the WAL (and the commits in it) under this one.
    path = tmp_path / "state.db"
    kept = Database.create(path)
    kept.conn.execute("PRAGMA wal_autocheckpoint=0")  # the commits stay in the WAL
    with kept.write() as conn:
        conn.execute("CREATE TABLE kept (x)")
        conn.execute("INSERT INTO kept VALUES (1)")
    Database.open(path).close()  # this process opens the store again
    child = multiprocessing.get_context("spawn").Process(target=_open_and_close, args=(str(path),))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert (tmp_path / "state.db-wal").stat().st_size > 0
    assert [tuple(r) for r in kept.conn.execute("SELECT x FROM kept")] == [(1,)]
