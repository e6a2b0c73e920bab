"""The contract between the dispatcher and a cluster backend.

A backend runs one job's own program (`python -m slurm.launch <job dir>`), which starts
an isolated Dask cluster for that job, runs the engine and leaves either
`<job dir>/result/` or `<job dir>/error.json`. The dispatcher drives a backend through
these steps, each safe to repeat:

1. `submit(submission)` starts the job and returns a handle (JSON-able); the
   dispatcher stores the handle with the job before doing anything else.
2. `poll(handle)` says whether the job is still `running` or has `ended` (with what the
   backend knows: an exit status, Slurm's state and reason, whether another attempt
   could succeed). It works from the handle alone, so a restarted dispatcher finds
   jobs it started before.
3. `cancel(handle)` stops the job and everything it started; cancelling an ended job
   does nothing.
4. `log_paths(job_dir, handle)` lists the files `tre logs` shows.

What the job produced is read from the job folder, never from the backend. A new kind
of cluster (dask-jobqueue's LSFCluster, say) is one more module with these four
methods and a line in `get_backend` (slurm/backends.py: this module, the contract,
imports no backend).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from slurm.sandbox import Plan
from tre.models import JobHandle, Resources, SlurmPlacement

Handle = JobHandle  # a backend's own record of a job it started (tre/models.py)


@dataclass(frozen=True)
class Submission:
    """Everything a backend needs to start one job."""

    job_id: int
    name: str  # unique on the cluster: tre-<home tag>-<job id>
    job_dir: Path
    project: str
    resources: Resources
    placement: SlurmPlacement
    #: The job's sandbox (local backend, sandboxed home); None runs it as the TRE's user.
    sandbox: Plan | None = None
    #: Its python steps' own sandbox, run first (jobs/handover.py); None: they run in
    #: `sandbox`, with the engine (a job without python steps, or on Slurm).
    code_sandbox: Plan | None = None


@dataclass(frozen=True)
class BackendStatus:
    state: Literal["running", "ended"]
    detail: str = ""
    retryable: bool = False  # ended for a reason another attempt could overcome


class Backend(Protocol):
    name: str
    #: False when the backend cannot stop a job at its walltime itself (the dispatcher does).
    enforces_walltime: bool
    #: Whether it runs every process of a job in the sandbox (slurm/sandbox.py) when the
    #: home asks for it.
    sandboxed: bool
    #: Whether it can run a job's python steps first, in a sandbox of their own
    #: (`Submission.code_sandbox`; jobs/handover.py).
    splits_code: bool
    #: Whether a job may wait in its queue before it runs (its key grant lives longer by
    #: that wait: tre/service/grants.py).
    queues: bool
    #: Whether its jobs' scratch is on the compute nodes, wiped by the job itself on
    #: exit, which leaves a marker (slurm/scripts.py: SCRATCH_WIPED); else the job
    #: folder's `scratch/`, which the dispatcher wipes.
    scratch_on_nodes: bool

    @property
    def key_gateway(self) -> str | None:
        """HOST:PORT of the key gateway its jobs reach keys through (tre/keyservice/
        gateway.py), or None: they reach the key service's Unix socket."""

    @property
    def runs_as_job_user(self) -> bool:
        """Whether its jobs are started as their job user (sudo -u ... sbatch), so the
        job user must reach its files itself and its sandbox is unprivileged; False:
        the TRE starts them as root, and the sandbox drops to the job user."""

    @property
    def reaches_as_job_user(self) -> bool:
        """Whether some process of its jobs opens the job's files as its job user outside
        a sandbox tre started as root (a job submitted as its job user; slurm-cluster's
        workers, which its engine submits): the job's folder and data must then be
        reachable by that user (tre/service/sandboxing.py: reach_for_job_user)."""

    @property
    def max_retries(self) -> int:
        """Further attempts after an ended-but-retryable job (a node failure, say)."""

    def submit(self, submission: Submission) -> Handle: ...

    def poll(self, handle: Handle) -> BackendStatus: ...

    def cancel(self, handle: Handle) -> None: ...

    def log_paths(self, job_dir: Path, handle: Handle) -> list[Path]: ...
