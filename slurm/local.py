"""The embedded default: each job runs as a child process with its own LocalCluster.

The job process is started in a new session (process group), so cancelling it kills
its Dask workers too. In a sandboxed home it runs in its sandbox (`slurm.sandbox`),
in a cgroup of its own where the host offers one, which is emptied when it ends.
Handles record the pid and the process's start time, so a
restarted dispatcher can tell its job from an unrelated process that reused the pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from slurm import cgroups, sandbox
from slurm.backend import BackendStatus, Handle, Submission

LOG = "job.log"
TERM_GRACE_SECONDS = 10.0


class LocalBackend:
    name = "local"
    cluster = "local"  # the --cluster of slurm.launch
    enforces_walltime = False
    sandboxed = True
    splits_code = True
    queues = False  # it starts at once
    scratch_on_nodes = False

    @property
    def key_gateway(self) -> str | None:
        return None  # its jobs run on this machine: they reach the key service's socket

    @property
    def runs_as_job_user(self) -> bool:
        return False  # tre starts it as root; its sandbox drops to the job user

    @property
    def reaches_as_job_user(self) -> bool:
        return False  # nothing of it opens a file before its sandbox is made

    @property
    def max_retries(self) -> int:
        return 0  # a local job that dies is not helped by starting it again

    def __init__(self) -> None:
        # Children we started in this process, so their exit status can be collected.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def submit(self, submission: Submission) -> Handle:
        job_dir = submission.job_dir
        command = [sys.executable, "-m", "slurm.launch", str(job_dir), "--cluster", self.cluster]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cwd = job_dir
        groups: tuple[Path, ...] = ()
        plan = submission.sandbox
        if plan is not None:
            groups = cgroups.make_cgroups(submission.name, plan.memory_bytes)
            command = sandbox.command(replace(plan, cgroups=groups))
            if submission.code_sandbox is not None:  # researcher code first, on its own
                code = sandbox.command(replace(submission.code_sandbox, cgroups=groups))
                command = sandbox.in_sequence(code, command)
            env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, Path("/")
        # The log holds whatever the job's code printed: it is the TRE's (0600), held
        # for the output checkers in a sandboxed home.
        fd = os.open(job_dir / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
                env=env,
            )
        except OSError:
            cgroups.kill_cgroups(groups)
            raise
        finally:
            os.close(fd)
        self._children[process.pid] = process
        handle: Handle = {
            "pid": process.pid,
            "start": _start_time(process.pid),
            "submitted": time.time(),
        }
        if plan is not None:
            handle |= {"sandbox": True, "cgroups": [str(g) for g in groups]}
        if submission.code_sandbox is not None:
            handle["split"] = True  # its engine ran no researcher code (jobs/handover.py)
        return handle

    def poll(self, handle: Handle) -> BackendStatus:
        pid = int(handle["pid"])
        child = self._children.get(pid)
        if child is not None:
            code = child.poll()
            if code is None:
                return BackendStatus("running")
            del self._children[pid]
            cgroups.kill_cgroups(handle.get("cgroups", []))  # nothing of it may linger
            return BackendStatus("ended", _describe_exit(code))
        if _alive(pid, handle.get("start")):
            return BackendStatus("running")
        cgroups.kill_cgroups(handle.get("cgroups", []))
        return BackendStatus("ended", "the job process is gone")

    def cancel(self, handle: Handle) -> None:
        pid = int(handle["pid"])
        if not _alive(pid, handle.get("start")) and pid not in self._children:
            return
        for sig, wait in ((signal.SIGTERM, TERM_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.poll(handle).state == "ended" and not _group_alive(pid):
                    cgroups.kill_cgroups(handle.get("cgroups", []))
                    return
                time.sleep(0.1)
        cgroups.kill_cgroups(handle.get("cgroups", []))

    def log_paths(self, job_dir: Path, handle: Handle) -> list[Path]:
        return [job_dir / LOG]


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces; fields after it are space-separated.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, start: int | None) -> bool:
    current = _start_time(pid)
    if current is None:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z" and (start is None or current == start)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the job process was killed by {name}"
    return f"the job process exited with status {code}"
