"""Killing what a job left in its cgroups (slurm/cgroups.py), on this host's real cgroup
tree: a group whose processes keep starting others is emptied and removed, and a task
that comes to join a removed group cannot start (a cancel that races a task's start,
as a Slurm job cancelled as its step launches)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from slurm import cgroups
from slurm.sandbox import Plan, command

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("TRE_REQUIRE_ALL") != "1",
    reason="making cgroups needs root",
)


@pytest.fixture
def groups():
    made = cgroups.make_cgroups(f"test-{uuid.uuid4().hex[:8]}", None)
    assert made, "no writable cgroup tree on this host (make test runs as root)"
    yield made
    cgroups.kill_cgroups(made)


def test_a_group_whose_processes_keep_forking_is_emptied_and_removed(groups):
    procs = " ".join(f'"{g / "cgroup.procs"}"' for g in groups)
    spawner = subprocess.Popen(
        [
            "/bin/sh",
            "-c",
            f"for f in {procs}; do echo $$ > $f; done; while :; do sleep 30 & sleep 0.01; done",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while len((groups[0] / "cgroup.procs").read_text().split()) < 5:
            assert time.monotonic() < deadline, "the spawner never filled its group"
            time.sleep(0.05)
        assert cgroups.kill_cgroups(groups)
        assert not any(g.exists() for g in groups)
        assert spawner.wait(timeout=10) != 0  # killed, not ended
    finally:
        spawner.kill()


def test_a_task_that_comes_to_join_a_removed_group_does_not_start(groups, tmp_path):
    assert cgroups.kill_cgroups(groups)  # the cancel came first
    marker = tmp_path / "started"
    plan = Plan(
        job_dir=tmp_path,
        out_dir=tmp_path,
        data=(),
        key_socket=None,
        uid=os.getuid(),
        gid=os.getgid(),
        memory_bytes=1 << 30,
        cpu_seconds=10,
        program=("/bin/touch", str(marker)),
        cgroups=groups,
        cgroups_here_only=True,
    )
    joined = command(plan)
    # Only the join at its head: the rest (bubblewrap, limits) is another test's.
    head = joined[: joined.index("--") + 1]
    done = subprocess.run([*head, "/bin/touch", str(marker)], timeout=30)
    assert done.returncode == 70
    assert not marker.exists()


def test_a_task_that_joins_as_the_group_is_removed_is_killed_too(groups, monkeypatch):
    """The race itself, made certain: the task joins between the kill's last look at the
    group (empty) and its removal, which the kernel then refuses (busy)."""
    late: list[subprocess.Popen[bytes]] = []
    real_rmdir = type(groups[0]).rmdir

    def rmdir_as_a_task_joins(path):
        if not late:
            task = subprocess.Popen(["sleep", "60"])
            for group in groups:
                (group / "cgroup.procs").write_text(str(task.pid))
            late.append(task)
        return real_rmdir(path)

    monkeypatch.setattr(type(groups[0]), "rmdir", rmdir_as_a_task_joins)
    try:
        assert cgroups.kill_cgroups(groups)
        assert late[0].wait(timeout=10) == -9  # killed, not left running
        assert not any(g.exists() for g in groups)
    finally:
        for task in late:
            task.kill()
