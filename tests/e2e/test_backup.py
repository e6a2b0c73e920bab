"""Backups: taken while the home is in use, checked file by file, restored into a home
that runs jobs on the same keys; damaged or incomplete backups are refused."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, cli_for
from tre import audit
from tre.models import JobState, Role
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow


def _run_job(cli, home: Path) -> int:
    submitted = cli("submit", EXAMPLES / "health_by_area.yaml", who="rita")
    assert submitted.code == 0, submitted.err
    assert cli("run", "--once", who="ada").code == 0
    s = Session.open(home, "ada")
    try:
        job = repo.list_jobs(s.conn)[-1]
    finally:
        s.close()
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    return job.id


def test_a_restored_backup_is_a_home_that_works(cli, home, tmp_path, capsys):
    first = _run_job(cli, home)
    dest = tmp_path / "backups" / "monday"
    dest.parent.mkdir()
    made = cli("backup", "create", dest, who="ada")
    assert made.code == 0, made.err
    assert f"Backed up to {dest}" in made.out
    assert dest.stat().st_mode & 0o777 == 0o700
    keys = list((dest / "keys").glob("*.key"))
    assert keys and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    assert not list(dest.parent.glob(".monday.partial-*"))  # nothing half-written is left

    checked = cli("backup", "verify", dest)
    assert checked.code == 0, checked.err
    assert "backup intact" in checked.out

    target = tmp_path / "restored"
    restored = cli("backup", "restore", dest, target)
    assert restored.code == 0, restored.err
    again = cli_for(target, capsys)
    verified = again("audit", "verify", who="ada")
    assert verified.code == 0 and "audit log intact" in verified.out
    assert again("dataset", "verify", "residents", who="ada").code == 0
    shown = again("status", str(first), who="rita")
    assert "awaiting_review" in shown.out
    assert _run_job(again, target) == first + 1  # the restored keys decrypt the data

    s = Session.open(home, "ada")
    try:
        events = [e for e in audit.events(s.conn) if e.action == "home.backup"]
    finally:
        s.close()
    assert len(events) == 1 and events[0].details["path"] == str(dest)


def test_a_damaged_backup_is_found_out_and_never_restored(cli, home, tmp_path):
    dest = tmp_path / "backup"
    assert cli("backup", "create", dest, who="ada").code == 0
    data = sorted((dest / "data" / "residents").rglob("*.parquet"))[0]
    data.write_bytes(data.read_bytes() + b"x")
    key = sorted((dest / "keys").glob("residents.footer.v*.key"))[0]
    key.unlink()
    (dest / "note.txt").write_text("added later")

    checked = cli("backup", "verify", dest)
    assert checked.code == 1
    assert f"{data.relative_to(dest)} was changed after the backup" in checked.err
    assert f"{key.relative_to(dest)} is missing" in checked.err
    assert "note.txt is not in the manifest" in checked.err
    assert "which the backup's key store does not hold" in checked.err

    refused = cli("backup", "restore", dest, tmp_path / "restored")
    assert refused.code != 0 and "does not verify, so it was not restored" in refused.err
    assert not (tmp_path / "restored").exists()

    (dest / "backup.json").unlink()
    unfinished = cli("backup", "verify", dest)
    assert unfinished.code == 1 and "not a finished tre backup" in unfinished.err


def test_a_backup_is_refused_where_it_would_do_harm(cli, home, tmp_path):
    exists = tmp_path / "exists"
    exists.mkdir()
    refused = cli("backup", "create", exists, who="ada")
    assert refused.code != 0 and "already exists" in refused.err
    inside = cli("backup", "create", home / "jobs" / "copy", who="ada")
    assert inside.code != 0 and "inside the TRE home" in inside.err
    researcher = cli("backup", "create", tmp_path / "mine", who="rita")
    assert researcher.code != 0 and "you cannot back up the TRE home" in researcher.err
    assert not (tmp_path / "mine").exists()

    without = tmp_path / "without-data"
    made = cli("backup", "create", without, "--no-data", who="ada")
    assert made.code == 0 and "data/) was left out" in made.out
    assert not (without / "data").exists()
    assert cli("backup", "verify", without).code == 0
    partial = cli("backup", "restore", without, tmp_path / "restored")
    assert partial.code != 0 and "taken without the secured data" in partial.err


def test_a_backup_taken_while_the_service_writes_is_consistent(cli, home, tmp_path):
    stop = threading.Event()
    written: list[int] = []

    def write_events() -> None:
        s = Session.open(home, "ada")
        try:
            while not stop.is_set():
                with s.write() as conn:
                    s.record(conn, "test.write", "home", Role.ADMIN, {"n": len(written)})
                written.append(1)
        finally:
            s.close()

    writer = threading.Thread(target=write_events)
    writer.start()
    try:
        while len(written) < 20:  # the writer is busy before the backup starts
            threading.Event().wait(0.01)
        made = cli("backup", "create", tmp_path / "busy", who="ada")
    finally:
        stop.set()
        writer.join()
    assert made.code == 0, made.err
    checked = cli("backup", "verify", tmp_path / "busy")
    assert checked.code == 0, checked.err
    manifest = json.loads((tmp_path / "busy" / "backup.json").read_text())
    assert manifest["audit"]["ok"] and manifest["audit"]["events"] > 20
