"""The embedded default: each job runs as a child process with its own LocalCluster.

The job process is started in a new session (process group), so cancelling it kills
its Dask workers too. Handles record the pid and the process's start time, so a
restarted dispatcher can tell its job from an unrelated process that reused the pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from slurm.backend import BackendStatus, Handle, Submission

LOG = "job.log"
TERM_GRACE_SECONDS = 10.0


class LocalBackend:
    name = "local"
    cluster = "local"  # the --cluster of slurm.launch
    enforces_walltime = False

    @property
    def max_retries(self) -> int:
        return 0  # a local job that dies is not helped by starting it again

    def __init__(self) -> None:
        # Children we started in this process, so their exit status can be collected.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def submit(self, submission: Submission) -> Handle:
        job_dir = submission.job_dir
        log = (job_dir / LOG).open("ab")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "slurm.launch", str(job_dir), "--cluster", self.cluster],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=job_dir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        self._children[process.pid] = process
        return {"pid": process.pid, "start": _start_time(process.pid), "submitted": time.time()}

    def poll(self, handle: Handle) -> BackendStatus:
        pid = int(handle["pid"])
        child = self._children.get(pid)
        if child is not None:
            code = child.poll()
            if code is None:
                return BackendStatus("running")
            del self._children[pid]
            return BackendStatus("ended", _describe_exit(code))
        if _alive(pid, handle.get("start")):
            return BackendStatus("running")
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
                    return
                time.sleep(0.1)

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
