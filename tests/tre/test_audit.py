import pytest

from tre import audit
from tre.store.db import Database


@pytest.fixture
def log(tmp_path):
    db = Database.create(tmp_path / "state.db", tmp_path / "audit.head")
    for i in range(1, 7):
        with db.write() as conn:
            audit.append(
                conn, actor="ada", role="admin", action=f"act{i}", obj=f"obj:{i}", details={"n": i}
            )
    return db, tmp_path / "audit.head"


def _tamper(db, sql, *params):
    """What an attacker with file access could do: drop the guard triggers and edit."""
    db.conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    db.conn.execute(sql, params)


def test_an_untouched_log_verifies(log):
    db, head = log
    result = audit.verify(db.conn, head)
    assert result.ok
    assert result.events == 6


def test_an_edited_event_is_found_and_named(log):
    db, head = log
    _tamper(db, "UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    result = audit.verify(db.conn, head)
    assert not result.ok
    assert any("event #3" in p and "edited" in p for p in result.problems)


def test_edited_details_are_found(log):
    db, head = log
    _tamper(db, "UPDATE audit SET details = '{\"n\": 99}' WHERE seq = 5")
    assert any("#5" in p for p in audit.verify(db.conn, head).problems)


def test_a_removed_event_is_found_and_named(log):
    db, head = log
    _tamper(db, "DELETE FROM audit WHERE seq = 4")
    problems = audit.verify(db.conn, head).problems
    assert any("#4 removed" in p for p in problems)


def test_reordered_events_are_found(log):
    db, head = log
    _tamper(db, "UPDATE audit SET seq = 100 WHERE seq = 2")
    _tamper(db, "UPDATE audit SET seq = 2 WHERE seq = 3")
    _tamper(db, "UPDATE audit SET seq = 3 WHERE seq = 100")
    problems = audit.verify(db.conn, head).problems
    assert any("does not follow" in p for p in problems)


def test_events_cut_from_the_end_are_found_through_the_anchor(log):
    db, head = log
    _tamper(db, "DELETE FROM audit WHERE seq >= 5")
    problems = audit.verify(db.conn, head).problems
    assert any("removed from the end" in p for p in problems)


def test_the_anchor_follows_every_commit(log):
    db, head = log
    seq, digest = head.read_text().split()
    last = db.conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    assert (int(seq), digest) == (last[0], last[1])


def test_append_outside_a_transaction_is_a_programming_error(tmp_path):
    db = Database.create(tmp_path / "s.db")
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.append(db.conn, actor="a", role="admin", action="x", obj="o")
