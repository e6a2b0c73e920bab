"""The contract between the dispatcher and a cluster backend.

A backend runs one job's own program (`python -m slurm.launch <job dir>`), which starts
an isolated Dask cluster for that job, runs the engine and leaves either
`<job dir>/result/` or `<job dir>/error.json`. The dispatcher drives a backend through
these steps, each safe to repeat:

1. `submit(job_dir, resources)` starts the job and returns a handle (JSON-able); the
   dispatcher stores the handle with the job before doing anything else.
2. `poll(handle)` says whether the job is still `running` or has `ended` (with the reason
   the backend knows, e.g. an exit status or Slurm's reason). It works from the handle
   alone, so a restarted dispatcher finds jobs it started before.
3. `cancel(handle)` stops the job and everything it started; cancelling an ended job
   does nothing.
4. `log_paths(job_dir, handle)` lists the files `tre logs` shows.

What the job produced is read from the job folder, never from the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from tre.models import Resources

Handle = dict[str, Any]


@dataclass(frozen=True)
class BackendStatus:
    state: Literal["running", "ended"]
    detail: str = ""


class Backend(Protocol):
    name: str
    #: False when the backend cannot stop a job at its walltime itself (the dispatcher does).
    enforces_walltime: bool

    def submit(self, job_dir: Path, resources: Resources) -> Handle: ...

    def poll(self, handle: Handle) -> BackendStatus: ...

    def cancel(self, handle: Handle) -> None: ...

    def log_paths(self, job_dir: Path, handle: Handle) -> list[Path]: ...


def get_backend(name: str) -> Backend:
    """The backend called `name`; PlatformError lists the ones there are."""
    from tre.errors import PlatformError

    if name == "local":
        from slurm.local import LocalBackend

        return LocalBackend()
    raise PlatformError(
        f"unknown backend {name!r}",
        fix="set backend in the TRE home's tre.yaml to one of: local",
    )
