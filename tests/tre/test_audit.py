import logging

import pytest

from tests.conftest import cli_for
from tests.tmpfs import fill, free, tmpfs
from tests.tre.keys.softhsm import start_token
from tre import audit
from tre.keys import keysystems
from tre.keys.keystore import KeyStoreError
from tre.keys.masterkeys import AUDIT_KEY, KmsSettings
from tre.service import people
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


# --- the keyed chain --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_key_systems():
    keysystems.forget_opened()
    yield
    keysystems.forget_opened()


def _keys_root(tmp_path, name="keys"):
    root = tmp_path / name
    root.mkdir(mode=0o700)
    return root


@pytest.fixture
def keyed(tmp_path):
    """Six events keyed with the audit key of a local key store, as a home's are."""
    settings = KmsSettings.local(_keys_root(tmp_path))
    db = Database.create(
        tmp_path / "state.db", tmp_path / "audit.head", audit_mac=audit.keyed_with(settings)
    )
    for i in range(1, 7):
        with db.write() as conn:
            audit.append(conn, actor="ada", role="admin", action=f"act{i}", obj=f"o:{i}")
    return db, tmp_path / "audit.head", settings


def _forge(db, head, first, rehash):
    """The attack: edit event `first`, recompute its hash and every later one with
    `rehash(fields) -> (scheme, hash)`, and rewrite audit.head to match."""
    _tamper(db, "UPDATE audit SET actor = 'mallory' WHERE seq = ?", first)
    before = db.conn.execute("SELECT hash FROM audit WHERE seq = ?", (first - 1,)).fetchone()
    prev = before[0] if before else audit.GENESIS
    rows = db.conn.execute("SELECT * FROM audit WHERE seq >= ? ORDER BY seq", (first,)).fetchall()
    for row in rows:
        fields = (prev, row["at"], row["actor"], row["role"], row["action"], row["object"])
        scheme, digest = rehash((*fields, row["details"]))
        db.conn.execute(
            "UPDATE audit SET prev_hash = ?, hash = ?, scheme = ? WHERE seq = ?",
            (prev, digest, scheme, row["seq"]),
        )
        prev = digest
    head.write_text(f"{rows[-1]['seq']} {prev}\n")


def test_a_keyed_chain_verifies_and_every_event_says_it_is_keyed(keyed):
    db, head, settings = keyed
    result = audit.verify(db.conn, head)
    assert result.ok, result.problems
    assert result.events == 6
    schemes = {r[0] for r in db.conn.execute("SELECT scheme FROM audit")}
    assert schemes == {audit.HMAC1}
    # The audit key is made on first use and kept out of the data keys' listing.
    keys = keysystems.open_master_keys(settings)
    assert keys.versions(AUDIT_KEY) == [1] and AUDIT_KEY not in keys.key_ids()


def test_a_chain_rebuilt_with_plain_sha256_after_an_edit_is_tampered(keyed):
    db, head, _ = keyed
    _forge(db, head, 3, lambda fields: (audit.SHA256, audit.event_hash(*fields)))
    result = audit.verify(db.conn, head)
    assert not result.ok
    first = result.problems[0]
    assert first.startswith("event #3 (act3") and "not keyed although event #1" in first
    assert "without the TRE's audit key" in first


def test_sha256_hashes_labelled_as_keyed_are_forgeries(keyed):
    db, head, _ = keyed
    _forge(db, head, 3, lambda fields: (audit.HMAC1, audit.event_hash(*fields)))
    result = audit.verify(db.conn, head)
    assert not result.ok
    assert result.problems[0].startswith("event #3 (act3") and "forged" in result.problems[0]


def test_a_chain_rebuilt_with_an_hmac_under_a_wrong_key_is_tampered(keyed, tmp_path):
    db, head, _ = keyed
    wrong = audit.keyed_with(KmsSettings.local(_keys_root(tmp_path, "other-keys")))
    _forge(db, head, 3, lambda fields: (audit.HMAC1, audit.keyed_hash(wrong, *fields)))
    result = audit.verify(db.conn, head)
    assert not result.ok
    assert result.problems[0].startswith("event #3 (act3") and "forged" in result.problems[0]
    assert all("#1 " not in p and "#2 " not in p for p in result.problems)


def test_a_whole_chain_rebuilt_without_the_key_is_tampered(keyed):
    db, head, _ = keyed
    _forge(db, head, 1, lambda fields: (audit.SHA256, audit.event_hash(*fields)))
    problems = audit.verify(db.conn, head).problems
    assert problems == [
        "the newest event #6 is not keyed: the log was rebuilt without the TRE's audit key, "
        "or written by a tre that does not key it"
    ]


def test_tre_audit_verify_reports_the_rebuilt_chain(tmp_path, capsys):
    # The same attack on a real home (keys in its local key store), through the CLI.
    home = tmp_path / "home"
    people.init_home(home, admin="ada", full_name="Ada Admin", demo=True)
    cli = cli_for(home, capsys)
    for name in ("bob", "carl", "chen"):
        registered = cli(
            "admin", "register", name, "--full-name", name.title(), "--role", "checker", who="ada"
        )
        assert registered.code == 0, registered.err
    assert cli("audit", "verify", who="ada").code == 0
    db = Database(home / "state.db")
    _forge(db, home / "audit.head", 3, lambda fields: (audit.SHA256, audit.event_hash(*fields)))
    db.close()
    result = cli("audit", "verify", who="ada")
    assert result.code == 1
    assert "audit log NOT intact" in result.err
    assert "event #3 (" in result.err and "not keyed although event #1" in result.err


def test_a_keyed_chain_is_never_extended_without_the_key(keyed, tmp_path):
    bare = Database(tmp_path / "state.db")
    with pytest.raises(RuntimeError, match="no audit key"), bare.write() as conn:
        audit.append(conn, actor="a", role="admin", action="x", obj="o")
    result = audit.verify(bare.conn)  # and cannot be checked without it either
    assert result.problems == [
        "keyed events (from #1) cannot be checked without the home's audit key"
    ]


def test_events_hashed_before_keying_still_verify_and_are_pinned(tmp_path):
    # An old home: plain sha256 events, then opened by a tre that keys its chain.
    path, head = tmp_path / "state.db", tmp_path / "audit.head"
    old = Database.create(path, head)
    for i in range(3):
        with old.write() as conn:
            audit.append(conn, actor="ada", role="admin", action=f"old{i}", obj="o")
    old.close()
    mac = audit.keyed_with(KmsSettings.local(_keys_root(tmp_path)))
    db = Database.open(path, head, audit_mac=mac)
    with db.write() as conn:
        audit.append(conn, actor="ada", role="admin", action="new", obj="o")
    schemes = [r[0] for r in db.conn.execute("SELECT scheme FROM audit ORDER BY seq")]
    assert schemes == ["sha256"] * 3 + ["hmac1"]
    assert audit.verify(db.conn, head).ok
    # Rewriting the old events with sha256 breaks the first keyed event's MAC.
    _tamper(db, "UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    prev = db.conn.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0]
    for seq in (2, 3):
        row = db.conn.execute("SELECT * FROM audit WHERE seq = ?", (seq,)).fetchone()
        digest = audit.event_hash(prev, *[row[k] for k in ("at", "actor", "role", "action")],
                                  row["object"], row["details"])  # fmt: skip
        db.conn.execute(
            "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq)
        )
        prev = digest
    db.conn.execute("UPDATE audit SET prev_hash = ? WHERE seq = 4", (prev,))
    problems = audit.verify(db.conn).problems
    assert (
        len(problems) == 1 and problems[0].startswith("event #4 (new") and "forged" in problems[0]
    )


def test_an_old_home_is_keyed_when_its_schema_learns_schemes(tmp_path):
    path, head = tmp_path / "state.db", tmp_path / "audit.head"
    old = Database.create(path, head)
    with old.write() as conn:
        audit.append(conn, actor="ada", role="admin", action="home.init", obj="home")
    # As a tre before migration 006 left it: no scheme column, the migration not applied.
    old.conn.execute("ALTER TABLE audit DROP COLUMN scheme")
    old.conn.execute("DELETE FROM schema_migrations WHERE name = '006_audit_scheme'")
    old.close()
    mac = audit.keyed_with(KmsSettings.local(_keys_root(tmp_path)))
    db = Database.open(path, head, audit_mac=mac)
    last = audit.events(db.conn)[-1]
    assert (last.seq, last.action, last.actor) == (2, "audit.keyed", "tre")
    assert audit.verify(db.conn, head).ok
    db.close()
    Database.open(path, head, audit_mac=mac).close()  # once only
    assert len(audit.events(Database(path).conn)) == 2


def test_moving_to_another_key_system_pins_what_the_old_key_made(keyed, tmp_path):
    db, head, settings = keyed
    new = audit.keyed_with(KmsSettings.local(_keys_root(tmp_path, "new-keys")))
    with db.write() as conn:
        pin = audit.rekey(conn, new)
        audit.append(conn, actor="ada", role="admin", action="keys.configure", obj="home",
                     details=pin)  # fmt: skip
    keysystems.open_master_keys(settings).retire_audit_key()  # the old key is gone
    with db.write() as conn:
        audit.append(conn, actor="ada", role="admin", action="after", obj="o")
    assert audit.verify(db.conn, head).ok
    _tamper(db, "UPDATE audit SET details = '{\"n\": 1}' WHERE seq = 2")
    problems = audit.verify(db.conn, head).problems
    assert problems == [
        "events #1..#6, keyed before the key system changed (event #7 at "
        f"{audit.events(db.conn)[6].at}), were changed since"
    ]


def test_the_audit_key_is_neither_rotated_nor_destroyed(keyed):
    _, _, settings = keyed
    keys = keysystems.open_master_keys(settings)
    with pytest.raises(KeyStoreError, match="cannot be rotated"):
        keys.rotate(AUDIT_KEY)
    with pytest.raises(KeyStoreError, match="cannot be destroyed"):
        keys.destroy(AUDIT_KEY, 1)


def test_an_hsm_keys_the_chain(tmp_path):
    token = start_token(tmp_path / "hsm")
    settings = KmsSettings(
        kind="pkcs11",
        keys_root=str(_keys_root(tmp_path)),
        pkcs11_module=token.module,
        pkcs11_token=token.label,
        pkcs11_pin_file=str(token.pin_file),
    )
    db = Database.create(
        tmp_path / "state.db", tmp_path / "audit.head", audit_mac=audit.keyed_with(settings)
    )
    for i in range(1, 5):
        with db.write() as conn:
            audit.append(conn, actor="ada", role="admin", action=f"act{i}", obj="o")
    assert audit.verify(db.conn, tmp_path / "audit.head").ok
    keys = keysystems.open_master_keys(settings)
    assert keys.versions(AUDIT_KEY) == [1] and keys.key_ids() == []
    assert list((tmp_path / "keys").iterdir()) == []  # the key is on the token only
    local = audit.keyed_with(KmsSettings.local(_keys_root(tmp_path, "local-keys")))
    _forge(db, tmp_path / "audit.head", 2, lambda f: (audit.HMAC1, audit.keyed_hash(local, *f)))
    problems = audit.verify(db.conn, tmp_path / "audit.head").problems
    assert problems[0].startswith("event #2 (act2") and "forged" in problems[0]


# --- a full disk --------------------------------------------------------------------------


def test_an_anchor_that_cannot_be_written_does_not_undo_the_commit(tmp_path, caplog):
    with tmpfs(tmp_path / "full", "1m") as disk:
        db = Database.create(tmp_path / "state.db", disk / "audit.head")
        with db.write() as conn:
            audit.append(conn, actor="ada", role="admin", action="first", obj="o")
        fill(disk)
        with caplog.at_level(logging.WARNING, logger="tre.store"), db.write() as conn:
            audit.append(conn, actor="ada", role="admin", action="second", obj="o")
        assert [e.action for e in audit.events(db.conn)] == ["first", "second"]
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert "audit anchor" in warning and "No space left on device" in warning
        assert "second" not in warning  # says what happened, never what the event was
        assert sorted(p.name for p in disk.iterdir()) == ["audit.head", "ballast.bin"]
        result = audit.verify(db.conn, disk / "audit.head")
        assert result.ok and result.notes == ["audit.head is 1 event(s) behind the log"]
        free(disk)
        with db.write() as conn:
            audit.append(conn, actor="ada", role="admin", action="third", obj="o")
        result = audit.verify(db.conn, disk / "audit.head")
        assert result.ok and not result.notes
        db.close()
