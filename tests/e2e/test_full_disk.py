"""A full disk fails jobs cleanly and never the dispatcher: real jobs on a real, small
file system (a tmpfs mounted for the test, see tests/tmpfs.py), filled to ENOSPC.

- a job whose results do not fit ends `failed`, saying the disk is full and that it can
  be submitted again, with no traceback in its log;
- the disk filling while the dispatcher collects and checks a job's results (its audit
  anchor and the disclosure report cannot be written) fails that job, and the
  dispatcher goes on to run the next job once there is space;
- `tre audit verify` passes throughout: the database is the truth, the anchor catches up.

The home lives on the tmpfs. In the second test its state.db is a symlink to the
test's ordinary disk, so SQLite can still commit while every other file of the home
hits ENOSPC: exactly how the dispatcher met it (its commits went through, its anchor
and report writes did not), and deterministic, which a shared full disk is not.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.results import DISK_FULL_REASON, ERROR, UNRECORDED_REASON, reserve_error_space
from jobs.results import write_error as write_job_error
from tests.conftest import EXAMPLES, PROJECT, cli_for, write_spec
from tests.tmpfs import fill, free, tmpfs
from tre.models import JobState
from tre.service.dispatcher import ACTIVE, Dispatcher
from tre.service.session import Session
from tre.store import repo

BIG = textwrap.dedent("""
    import os

    def big(ctx):
        ctx.table("by_area", ctx.dataset("residents"), rows=["local_authority"])
        ctx.file("big", "big.bin", os.urandom(9 * 1024 * 1024))
""")


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


@pytest.fixture
def disk(tmp_path: Path, template_home: Path) -> Iterator[Path]:
    """A tmpfs with a copy of the template home in it, and room for about 24 MiB more."""
    size = _du(template_home) + 24 * 1024 * 1024
    with tmpfs(tmp_path / "disk", str(size)) as mounted:
        shutil.copytree(template_home, mounted / "home")
        yield mounted


def _submit(cli, spec: Path) -> int:
    result = cli("submit", spec, who="rita")
    assert result.code == 0, result.err
    return int(result.out.split()[1])


def _settle(dispatcher: Dispatcher, job_id: int):
    """Dispatcher passes until the job leaves the active states."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        dispatcher.tick()
        job = repo.get_job(dispatcher.session.conn, job_id)
        if job.state not in ACTIVE:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not settle: {job.state}")


def _verify(cli) -> str:
    verified = cli("audit", "verify", who="ada")
    assert verified.code == 0, verified.err
    assert "audit log intact" in verified.out
    return verified.err


def test_write_error_on_a_full_disk_says_so_and_never_raises(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as folder:
        reserve_error_space(folder)
        fill(folder)
        with pytest.raises(OSError) as full:
            (folder / "probe").write_text("x")
        assert full.value.errno == errno.ENOSPC
        (folder / "probe").unlink()
        # The job failed for another reason; the disk is full, so error.json cannot be
        # written normally: the space reserved at the start takes a short fixed message.
        assert write_job_error(folder, "ValueError: bad input " * 500) is True
        assert json.loads((folder / ERROR).read_text()) == {
            "reason": UNRECORDED_REASON,
            "disk_full": True,
        }
        # Without a reserve, nothing can be written, and still nothing raises.
        (folder / ERROR).unlink()
        fill(folder)
        assert write_job_error(folder, DISK_FULL_REASON, {"disk_full": True}) is False
        assert not (folder / ERROR).exists()
        assert sorted(p.name for p in folder.iterdir()) == ["ballast.bin"]


@pytest.mark.slow
def test_a_job_whose_results_do_not_fit_fails_cleanly(disk, tmp_path, capsys):
    home = disk / "home"
    cli = cli_for(home, capsys)
    (tmp_path / "big.py").write_text(BIG)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Writes more than the disk holds",
            "datasets": {"residents": ["local_authority"]},
            "steps": [{"kind": "python", "name": "big", "function": "big.py:big"}],
        },
    )
    job_id = _submit(cli, spec)
    fill(disk, leave=3 * 1024 * 1024)  # room to start and run, not for 9 MiB of results
    session = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(session)
        failed = _settle(dispatcher, job_id)
        assert failed.state is JobState.FAILED
        assert failed.reason.startswith("the TRE home's disk is full (ENOSPC)"), failed.reason
        assert "the job can be submitted again" in failed.reason
        assert "(the job process exited with status 1)" in failed.reason
        log = (home / "jobs" / f"{job_id:06d}" / "job.log").read_text()
        assert "Traceback" not in log
        _verify(cli)
        free(disk)
        again = _submit(cli, EXAMPLES / "health_by_area.yaml")
        assert _settle(dispatcher, again).state is JobState.AWAITING_REVIEW
    finally:
        session.close()
    _verify(cli)


@pytest.mark.slow
def test_the_disk_filling_while_results_are_collected_fails_the_job_not_the_dispatcher(
    disk, tmp_path, capsys, caplog
):
    home = disk / "home"
    database = tmp_path / "db" / "state.db"
    database.parent.mkdir()
    shutil.move(home / "state.db", database)
    (home / "state.db").symlink_to(database)
    cli = cli_for(home, capsys)
    job_id = _submit(cli, EXAMPLES / "health_by_area.yaml")
    session = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(session)
        dispatcher.tick()  # starts it
        handle = repo.get_job(session.conn, job_id).handle
        deadline = time.monotonic() + 180
        while dispatcher.backend.poll(handle).state == "running":
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.2)
        fill(disk)  # the job has written its results; now nothing more fits
        failed = _settle(dispatcher, job_id)
        assert failed.state is JobState.FAILED
        assert failed.reason.startswith("the TRE home's disk is full (ENOSPC)"), failed.reason
        assert failed.reason.endswith(
            "free space on it (the platform's to fix), then the job can be submitted again"
        )
        warnings = [r.getMessage() for r in caplog.records if r.name == "tre.store"]
        assert any("audit anchor" in w and "No space left on device" in w for w in warnings)
        _verify(cli)  # every commit is there; the anchor caught up once space was freed
        free(disk)
        again = _submit(cli, EXAMPLES / "health_by_area.yaml")
        assert _settle(dispatcher, again).state is JobState.AWAITING_REVIEW
    finally:
        session.close()
    assert "behind" not in _verify(cli)
