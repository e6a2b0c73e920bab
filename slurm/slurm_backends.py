"""The Slurm backends, both through dask-jobqueue.

- `SlurmRunnerBackend` (slurm-runner, the default on HPC): one allocation per job. The
  rendered sbatch script starts, under one `srun`, the job's Dask scheduler (task 0),
  the engine (task 1) and the workers, with dask-jobqueue's SLURMRunner. Decrypted data
  and keys stay inside the allocation.
- `SlurmClusterBackend` (slurm-cluster): the engine runs on the service node, as with the
  local backend, and dask-jobqueue's SLURMCluster starts workers as Slurm jobs, scaled
  adaptively up to the job's workers.
"""

from __future__ import annotations

import os
import pwd
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

from slurm import cgroups, commands, job_users, sandbox
from slurm.backend import BackendStatus, Handle, Submission
from slurm.cluster_settings import CLUSTER, ClusterSettings, write_settings
from slurm.errors import ProfileError
from slurm.local import LocalBackend
from slurm.profiles import SiteProfile, load_profile
from slurm.scripts import LOG_FOLDER, render_runner_script, thread_variables, worker_job_name
from slurm.tls import CERT, GATEWAY_FILES, KEY, write_job_certificate

SCRIPT = "job.sbatch"
#: Where munged's socket lives on Debian and most sites (munge's --socket default).
MUNGE_SOCKET_FOLDER = Path("/run/munge")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")


class _ProfiledBackend:
    """Shared by both Slurm backends: the site profile, loaded when first needed."""

    def __init__(self, profile: str | None) -> None:
        self._profile_ref = profile
        self._profile: SiteProfile | None = None

    @property
    def profile(self) -> SiteProfile:
        if self._profile is None:
            if not self._profile_ref:
                raise ProfileError(
                    "this TRE home uses a Slurm backend but names no site profile",
                    fix="set slurm_profile in the home's tre.yaml (e.g. 'local-test', or the "
                    "path of your site's profile)",
                )
            self._profile = load_profile(self._profile_ref)
        return self._profile

    @property
    def max_retries(self) -> int:
        return self.profile.retries

    @property
    def key_gateway(self) -> str | None:
        return self.profile.key_gateway

    @property
    def runs_as_job_user(self) -> bool:
        return self.profile.submit_via_sudo

    @property
    def reaches_as_job_user(self) -> bool:
        return self.runs_as_job_user

    def prepare(self, submission: Submission) -> ClusterSettings:
        """Write what the job's processes need into its folder: settings, certificate."""
        job_dir = submission.job_dir
        if not _SAFE_PATH.fullmatch(str(job_dir)):
            raise ProfileError(
                f"the job folder {job_dir} has characters a Slurm script cannot carry safely",
                fix="put TRE_HOME on a path of letters, digits, '_', '-', '.' and '/' only",
            )
        profile = self.profile
        if submission.sandbox is not None and not profile.tls:
            # Decrypted data crosses the compute network between the job's processes.
            raise ProfileError(
                f"the site profile {profile.name!r} turns TLS off (tls: false), and a sandboxed "
                "home never sends a job's Dask traffic in the clear",
                fix="set tls: true in the profile (each job then has a certificate of its own)",
            )
        settings = ClusterSettings(
            job_id=submission.job_id,
            name=submission.name,
            resources=submission.resources,
            profile=profile,
            placement=profile.placement_for(submission.project, submission.placement),
            python=profile.python or sys.executable,
        )
        if profile.tls:
            write_job_certificate(job_dir, submission.job_id)
        write_settings(job_dir, settings)
        return settings


class SlurmRunnerBackend(_ProfiledBackend):
    name = "slurm-runner"
    enforces_walltime = True  # Slurm ends the allocation at its --time
    sandboxed = True  # every task in the sandbox on its node
    splits_code = True  # python steps first, in a sandbox of their own, in one task
    queues = True  # Slurm's queue
    scratch_on_nodes = True  # each task's own, wiped on exit (the marker says so)

    def submit(self, submission: Submission) -> Handle:
        settings = self.prepare(submission)
        sandboxed = code_first = None
        groups: tuple[Path, ...] = ()
        plan = submission.sandbox
        user = log_dir = None
        if plan is not None and self.runs_as_job_user:
            # Submitted as the job user (sudo -u, docs/slurm.md): it writes Slurm's log
            # and the scratch marker in a folder of its own, never the job folder.
            user = pwd.getpwuid(plan.uid).pw_name
            log_dir = submission.job_dir / LOG_FOLDER
            log_dir.mkdir(mode=0o700, exist_ok=True)
            os.chown(log_dir, plan.uid, plan.gid)
        if plan is not None:
            # Every task runs in the job's sandbox, as the job user: it is handed the
            # job's settings and TLS certificate, read-only, as it is its input.
            extra = _shared_with_job(submission.job_dir, plan.gid)
            # Where this host lets tre make cgroups, every task joins the job's pids
            # cgroup too, so that whatever Slurm's process tracking misses (linuxproc
            # follows parents; a sandbox whose step daemon died is reparented) is
            # killed when the job ends. Sites with proctrack/cgroup have Slurm's own.
            # A job user cannot join them (cgroup v2 asks for the common ancestor's
            # write): Slurm's own tracking and --mem hold such jobs.
            if user is None:
                groups = cgroups.make_cgroups(submission.name, memory_bytes=None)

            def on_node(box: sandbox.Plan) -> list[str]:
                """`box` as every task of the allocation runs it, on its node."""
                return sandbox.command(
                    replace(
                        box,
                        cluster="slurm-runner",
                        share_net=True,
                        extra=extra,
                        unset=sandbox.unset_for_slurm(),
                        python=settings.python,
                        cgroups=groups,
                        cgroups_here_only=True,
                        die_with_parent=True,
                        key_socket=None if self.key_gateway else plan.key_socket,
                    )
                )

            sandboxed = on_node(plan)
            if submission.code_sandbox is not None:
                # First the python steps, on a Dask cluster of the whole allocation of
                # their own, every task as the code user: then the engine's, as the job
                # user. On a cluster of many nodes researcher code must reach the key
                # service to read data, so it keeps the node's network (the site's
                # fence applies) like the engine's tasks.
                code_first = on_node(submission.code_sandbox)
        script = render_runner_script(
            name=submission.name,
            job_dir=submission.job_dir,
            resources=submission.resources,
            profile=settings.profile,
            placement=settings.placement,
            python=settings.python,
            sandboxed=sandboxed,
            code_first=code_first,
            log_dir=log_dir,
        )
        path = submission.job_dir / SCRIPT
        path.write_text(script)
        if plan is not None:
            os.chown(path, 0, plan.gid)  # its job user reads it, when it submits it
            os.chmod(path, 0o440)
        slurm_id = commands.sbatch(path, chdir=log_dir or submission.job_dir, user=user)
        handle: Handle = {"slurm_job_id": slurm_id, "submitted": time.time()}
        if user is not None:
            handle["slurm_user"] = user
        if plan is not None:
            handle |= {"sandbox": True, "cgroups": [str(g) for g in groups]}
        if code_first is not None:
            handle["split"] = True  # its engine ran no researcher code (jobs/handover.py)
        return handle

    def poll(self, handle: Handle) -> BackendStatus:
        state = commands.job_state(int(handle["slurm_job_id"]))
        detail = f"Slurm job {handle['slurm_job_id']}: {commands.describe(state)}"
        if state.nodes and state.active:
            detail += f" on {state.nodes}"
        if state.active:
            return BackendStatus("running", detail)
        cgroups.kill_cgroups(handle.get("cgroups", []))  # nothing of it may linger
        if state.state == "FAILED" and state.nodes:
            # A node cut off mid-job: its tasks' peers fail before Slurm marks the node
            # (SlurmdTimeout), so the job ends FAILED, not NODE_FAIL. It is a node
            # failure all the same, never the job's own: tried again per the profile.
            lost = commands.lost_nodes(state.nodes)
            if lost:
                detail += f"; {', '.join(lost)} stopped answering during the job"
                return BackendStatus("ended", detail, retryable=True)
        return BackendStatus("ended", detail, retryable=state.retryable)

    def cancel(self, handle: Handle) -> None:
        commands.scancel(int(handle["slurm_job_id"]), user=handle.get("slurm_user"))
        cgroups.kill_cgroups(handle.get("cgroups", []))

    def log_paths(self, job_dir: Path, handle: Handle) -> list[Path]:
        log_dir = job_dir / LOG_FOLDER if handle.get("slurm_user") else job_dir
        return [log_dir / f"slurm-{handle['slurm_job_id']}.out"]


class SlurmClusterBackend(_ProfiledBackend, LocalBackend):
    name = "slurm-cluster"
    cluster = "slurm-cluster"
    enforces_walltime = False  # the engine runs here; workers have their own walltimes
    sandboxed = True  # the engine here in the local sandbox; each worker in its own
    splits_code = True  # python steps first, here, in a sandbox of their own
    queues = True  # its workers wait in Slurm's queue
    scratch_on_nodes = False  # the engine's, here; workers spill to their own /tmp

    def __init__(self, profile: str | None) -> None:
        _ProfiledBackend.__init__(self, profile)
        LocalBackend.__init__(self)

    @property
    def runs_as_job_user(self) -> bool:
        return False  # its engine is started here by tre, which drops to the job user

    @property
    def reaches_as_job_user(self) -> bool:
        return True  # its workers are Slurm jobs of the job user, submitted by its engine

    def submit(self, submission: Submission) -> Handle:
        settings = self.prepare(submission)
        plan = submission.sandbox
        if plan is None:
            handle = LocalBackend.submit(self, submission)
            return {**handle, "worker_jobs": worker_job_name(submission.name)}
        if not self.key_gateway:
            raise ProfileError(
                f"the site profile {self.profile.name!r} names no key gateway, and "
                "slurm-cluster's workers, Slurm jobs of the job user, have no other way to keys",
                fix="set key_gateway (HOST:PORT on the service node that compute nodes reach; "
                "docs/slurm.md), or use backend slurm-runner",
            )
        job_dir = submission.job_dir
        # The worker jobs run and log in a folder of their job user's own (never the
        # job folder), taken back when the job ends (tre/service/sandboxing.py).
        log_dir = job_dir / LOG_FOLDER
        log_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(log_dir, plan.uid, plan.gid)
        extra = _shared_with_job(job_dir, plan.gid)
        # Each worker: started by Slurm on its node as the job user (the engine submits
        # it), so bubblewrap runs unprivileged there; the node's network (the site's
        # fence), its TLS certificate and, on another node, the key gateway's files.
        worker = replace(
            plan,
            cluster=self.cluster,
            share_net=True,
            unprivileged=True,
            die_with_parent=True,
            extra=extra,
            key_socket=None,
            python=settings.python,
            program=(settings.python,),  # dask-jobqueue adds "-m distributed.cli.dask_worker"
            environment={**plan.environment, **thread_variables(submission.resources.cores)},
            cgroups=(),
            phase="all",
            handover=None,
        )
        settings = settings.model_copy(
            update={
                "worker_command": tuple(sandbox.command(worker)),
                "worker_folder": str(log_dir),
                "scheduler_port": self._scheduler_port(plan.uid),
            }
        )
        write_settings(job_dir, settings)
        _shared_with_job(job_dir, plan.gid)  # written anew: its group's again
        # The engine: here, in the local sandbox as the job user, with the host's network
        # (its workers reach its scheduler; it reaches Slurm's controller) and what sbatch
        # needs. Its python steps ran before it, in the local sandbox with no network at
        # all and no way to submit anything (submission.code_sandbox, unchanged).
        engine = replace(
            plan,
            cluster=self.cluster,
            share_net=True,
            extra=extra,
            host_binds=slurm_client_paths(),
            environment={**plan.environment, **slurm_client_environment()},
        )
        handle = LocalBackend.submit(self, replace(submission, sandbox=engine))
        return {
            **handle,
            "worker_jobs": worker_job_name(submission.name),
            "slurm_user": pwd.getpwuid(plan.uid).pw_name,
        }

    def _scheduler_port(self, job_uid: int) -> int:
        """Its scheduler's port on the service node: the profile's scheduler_ports, by the
        job's slot (never two running jobs on one); 0 (any) when the profile has none."""
        first, last = self.profile.port_range()
        if not first:
            return 0
        index = next((s.index for s in job_users.pool() if s.job_uid == job_uid), None)
        if index is None or first + index > last:
            raise ProfileError(
                f"the site profile's scheduler_ports {self.profile.scheduler_ports} has no "
                f"port for job slot {index}",
                fix="give scheduler_ports one port per slot of the job users' pool "
                "(python -m slurm.job_users lists them), and open them in the compute fence",
            )
        return first + index

    def poll(self, handle: Handle) -> BackendStatus:
        status = LocalBackend.poll(self, handle)
        if status.state == "running":
            return BackendStatus(
                "running", f"engine on this node, Slurm workers named {handle.get('worker_jobs')}"
            )
        _cancel_workers(handle)  # an engine killed outright leaves them queued
        return status

    def cancel(self, handle: Handle) -> None:
        LocalBackend.cancel(self, handle)  # the engine closes its SLURMCluster on SIGTERM
        _cancel_workers(handle)  # ... and if it was killed outright, they go by name

    def log_paths(self, job_dir: Path, handle: Handle) -> list[Path]:
        workers = (
            sorted((job_dir / LOG_FOLDER).glob("slurm-*.out"))
            if handle.get("slurm_user")
            else sorted((job_dir / "workers").glob("*.err"))
        )
        return [*LocalBackend.log_paths(self, job_dir, handle), *workers]


def _shared_with_job(job_dir: Path, gid: int) -> tuple[str, ...]:
    """The job folder's files its processes are shown read-only under /job (its cluster
    settings, TLS certificate and key gateway files), made readable by its slot's group
    only. Their names."""
    names = tuple(
        name for name in (CLUSTER, CERT, KEY, *GATEWAY_FILES) if (job_dir / name).exists()
    )
    for name in names:
        os.chown(job_dir / name, 0, gid)
        os.chmod(job_dir / name, 0o440)
    return names


def _cancel_workers(handle: Handle) -> None:
    """Cancel a slurm-cluster job's worker jobs by name and, sandboxed, every Slurm job
    of its job user: whatever its engine submitted (tre's code; its researcher code could
    submit nothing), nothing of it outlives the job."""
    if handle.get("worker_jobs"):
        commands.scancel(name=str(handle["worker_jobs"]))
    if handle.get("slurm_user"):
        commands.scancel(owner=str(handle["slurm_user"]))


def slurm_client_paths() -> tuple[Path, ...]:
    """What `sbatch` and `scancel` read on this node: Slurm's configuration folder and
    munge's socket folder (only those that exist)."""
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).parent
    return tuple(p for p in (conf, MUNGE_SOCKET_FOLDER) if p.is_dir())


def slurm_client_environment() -> dict[str, str]:
    """The service's SLURM_CONF, if it has one, so its engine's sbatch finds the same."""
    return {k: os.environ[k] for k in ("SLURM_CONF",) if k in os.environ}
