"""The cgroups a job's processes (or a disclosure check's) are kept in, where the host
lets tre make them: memory and processes per job, and everything left killed at the end.
v1 and v2 alike; without a writable cgroup tree the rlimits of slurm/sandbox.py remain.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROCESSES_PER_JOB = 512


def make_cgroups(name: str, memory_bytes: int | None) -> tuple[Path, ...]:
    """Per-job memory and pids cgroups (v1 or v2) where the host lets tre make them;
    with `memory_bytes` None, the pids cgroup only (Slurm limits a job's memory)."""
    made = []
    v2 = CGROUP_ROOT / "cgroup.controllers"
    if v2.exists():
        group = CGROUP_ROOT / "tre" / name
        try:
            group.mkdir(parents=True, exist_ok=True)
            if memory_bytes is not None:
                (group / "memory.max").write_text(str(memory_bytes))
            (group / "pids.max").write_text(str(PROCESSES_PER_JOB))
            made.append(group)
        except OSError:
            pass
        return tuple(made)
    wanted: list[tuple[str, dict[str, int]]] = [("pids", {"pids.max": PROCESSES_PER_JOB})]
    if memory_bytes is not None:
        wanted.insert(0, ("memory", {"memory.limit_in_bytes": memory_bytes}))
    for controller, settings in wanted:
        group = CGROUP_ROOT / controller / "tre" / name
        try:
            group.mkdir(parents=True, exist_ok=True)
            for file, value in settings.items():
                (group / file).write_text(str(value))
            swap = group / "memory.memsw.limit_in_bytes"
            if controller == "memory" and swap.exists() and memory_bytes is not None:
                swap.write_text(str(memory_bytes))  # no escape into swap either
            made.append(group)
        except OSError:
            continue
    return tuple(made)


def kill_cgroups(groups: tuple[Path, ...] | list[str]) -> bool:
    """Kill every process left in the job's cgroups and remove them; True if empty now.

    A job's task joins its cgroup as it starts (`slurm.sandbox.command`), so a cancel
    that comes at that moment can find the group empty, and the task join it just
    before the group is removed (rmdir then fails: the group is busy). So: kill what is
    there, remove the group, and while it is busy, kill again (for up to 5 s). Once it
    is removed, a task that has not joined yet cannot: it exits without starting."""
    empty = True
    for group in map(Path, groups):
        procs = group / "cgroup.procs"
        deadline = time.monotonic() + 5.0
        while True:
            try:
                pids = [int(p) for p in procs.read_text().split()]
            except OSError:
                pids = []
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not pids:
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    pass  # busy: a process joined since it was read; kill it too
            if time.monotonic() > deadline:
                empty = False
                break
            time.sleep(0.02)  # SIGKILL is delivered, not awaited: wait for them to go
    return empty
