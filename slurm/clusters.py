"""Start the Dask cluster a job runs on. One cluster per job, torn down with it.

- `local_cluster`: the embedded default, a LocalCluster of worker processes.
- `runner_cluster`: inside a Slurm allocation, dask-jobqueue's SLURMRunner: task 0 is
  the scheduler, task 1 the engine (this code), the others workers.
- `jobqueue_cluster`: dask-jobqueue's SLURMCluster from the service node, each worker
  its own Slurm job, scaled adaptively up to the job's workers.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster
from distributed.core import rpc
from distributed.security import Security

from slurm.cluster_settings import ClusterSettings
from slurm.errors import ProfileError
from slurm.sandbox import SANDBOX_SCRATCH
from slurm.scripts import thread_environment, thread_variables, worker_job_name
from slurm.tls import job_security
from tre.models import Resources
from tre.units import format_duration

log = logging.getLogger("tre.job")

# Decrypted data must not reach disk unencrypted: no spilling to disk, and the workers'
# scratch space is the job's own folder, wiped when the job ends. The scheduler and
# workers always run an HTTP server; keep it to a health check on a loopback port of its
# own, so no job exposes its task or worker pages (or proxies) to other local users.
DASK_SETTINGS = {
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.target": False,
    "distributed.logging.distributed": "warning",
    "distributed.admin.tick.limit": "30s",
    "distributed.scheduler.http.routes": ["distributed.http.health"],
    "distributed.worker.http.routes": ["distributed.http.health"],
}


def worker_environment(cores: int) -> dict[str, str]:
    """Environment of each worker process: thread pools sized to the worker's cores
    (polars would otherwise use every core of the node, whatever the job asked for)."""
    base = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    return {**base, **thread_variables(cores)}


@contextmanager
def local_cluster(resources: Resources, scratch: Path) -> Iterator[Client]:
    """A LocalCluster sized by the job's resources, with worker processes."""
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings = {
        **DASK_SETTINGS,
        "distributed.nanny.pre-spawn-environ": worker_environment(resources.cores),
    }
    with (
        dask.config.set(settings),
        LocalCluster(
            n_workers=resources.workers,
            threads_per_worker=resources.cores,
            memory_limit=resources.memory,
            processes=True,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            local_directory=str(scratch),
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _lifetime(settings: ClusterSettings) -> int:
    """Workers retire before the walltime, so they leave cleanly rather than be killed."""
    walltime, margin = settings.resources.walltime, settings.profile.lifetime_margin
    return max(walltime - margin, walltime // 2)


def runner_options(settings: ClusterSettings, job_dir: Path, rank: int) -> dict[str, Any]:
    """SLURMRunner's scheduler and worker options for this job."""
    profile, resources = settings.profile, settings.resources
    scratch = Path(os.environ.get("TRE_JOB_SCRATCH", str(job_dir / "scratch")))
    # A scheduler whose engine died goes idle: end the allocation soon, not at walltime.
    # It must outlast the engine's own wait for workers, or it would close under it.
    idle = f"{settings.profile.startup_timeout + 120}s"
    scheduler: dict[str, Any] = {"dashboard_address": ":0", "idle_timeout": idle}
    # No worker lifetime here: in one allocation no worker could replace a retired one;
    # Slurm ends them all at the walltime.
    worker: dict[str, Any] = {
        "nthreads": resources.cores,
        "memory_limit": resources.memory,
        "local_directory": str(scratch / f"worker-{rank}"),
        "death_timeout": profile.worker_death_timeout,
    }
    if profile.scheduler_interface or profile.interface:
        scheduler["interface"] = profile.scheduler_interface or profile.interface
    if profile.interface:
        worker["interface"] = profile.interface
    if profile.tls:
        security = job_security(job_dir)
        scheduler |= {"security": security, "protocol": "tls"}
        worker["security"] = security
    return {"scheduler_options": scheduler, "worker_options": worker}


def scheduler_file(job_dir: Path, out: Path | None = None) -> Path:
    """Where the allocation's scheduler says its address: in the job's output folder
    (the only one a sandboxed task can write), or its job folder."""
    return (out or job_dir) / f"scheduler-{os.environ.get('SLURM_JOB_ID', 'local')}.json"


def _runner_class(security: Security | None) -> type:
    """SLURMRunner whose engine-side connection to the scheduler speaks the job's TLS
    (dask-jobqueue's own opens it without connection arguments)."""
    from dask_jobqueue.slurm import SLURMRunner

    class JobRunner(SLURMRunner):
        async def before_client_start(self) -> None:
            if security is not None and self.scheduler_address:
                self.scheduler_comm = rpc(
                    self.scheduler_address,
                    connection_args=security.get_connection_args("client"),
                )

    return JobRunner


def runner_dask_settings(settings: ClusterSettings) -> dict[str, Any]:
    """In one allocation lost workers never come back: fail their tasks rather than wait
    for the walltime."""
    return {
        **DASK_SETTINGS,
        "distributed.scheduler.no-workers-timeout": f"{settings.profile.worker_death_timeout}s",
    }


def serve_runner_role(
    settings: ClusterSettings, job_dir: Path, rank: int, out: Path | None = None
) -> None:
    """Tasks other than the engine: be the scheduler (task 0) or a worker until the job's
    cluster shuts down, then return. Their scratch is wiped on the way out."""
    options = runner_options(settings, job_dir, rank)
    runner = _runner_class(options["worker_options"].get("security"))
    try:
        with dask.config.set(runner_dask_settings(settings)):
            runner(scheduler_file=str(scheduler_file(job_dir, out)), **options)
    except SystemExit:
        pass  # SLURMRunner ends scheduler and worker tasks with SIGINT -> SystemExit
    finally:
        shutil.rmtree(options["worker_options"]["local_directory"], ignore_errors=True)


@contextmanager
def runner_cluster(
    settings: ClusterSettings, job_dir: Path, out: Path | None = None
) -> Iterator[Client]:
    """Task 1 of the allocation: connect the engine to the job's scheduler and workers."""
    timeout = settings.profile.startup_timeout
    path = scheduler_file(job_dir, out)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise ProfileError(
                f"the job's Dask scheduler did not start within {format_duration(timeout)}",
                fix="see the job's Slurm log (tre logs JOB); check the profile's python and "
                "interface with 'tre cluster check'",
            )
        time.sleep(0.2)
    options = runner_options(settings, job_dir, rank=1)
    security = options["scheduler_options"].get("security")
    with (
        dask.config.set(runner_dask_settings(settings)),
        _runner_class(security)(scheduler_file=str(path), **options) as runner,
        Client(runner, security=security) as client,
    ):
        wait_for_some_workers(client, settings.resources.workers, timeout)
        yield client


def wait_for_some_workers(client: Client, wanted: int, timeout: float) -> None:
    """Wait for the job's workers; go on with fewer if some never start (a worker task
    that died at start-up does not come back), fail only if none did."""
    try:
        client.wait_for_workers(wanted, timeout=timeout)
    except TimeoutError:
        have = len(client.scheduler_info()["workers"])
        if have == 0:
            raise ProfileError(
                f"no worker of the job started within {format_duration(int(timeout))}",
                fix="see the job's Slurm log (tre logs JOB) for why the worker tasks failed",
            ) from None
        log.warning("only %d of %d workers started; the job goes on with them", have, wanted)


@contextmanager
def jobqueue_cluster(settings: ClusterSettings, job_dir: Path) -> Iterator[Client]:
    """SLURMCluster from this node: workers are Slurm jobs, scaled adaptively."""
    from dask_jobqueue import SLURMCluster

    profile, resources, placement = settings.profile, settings.resources, settings.placement
    security = job_security(job_dir) if profile.tls else None
    directives = [f"--qos={placement.qos}"] if placement.qos else []
    directives += ["--exclusive"] if profile.exclusive else []
    directives += list(profile.sbatch_extra)
    lifetime = [
        "--lifetime",
        f"{_lifetime(settings)}s",
        "--lifetime-stagger",
        f"{profile.lifetime_stagger}s",
    ]
    scheduler_options: dict[str, Any] = {"dashboard_address": ":0"}
    if profile.scheduler_interface or profile.interface:
        scheduler_options["interface"] = profile.scheduler_interface or profile.interface
    if settings.scheduler_port:  # the one port of its slot the compute nodes' fence opens
        scheduler_options["port"] = settings.scheduler_port
    python = shlex.quote(settings.python)  # jobqueue writes it into a shell line
    local_directory = f"{profile.local_directory}/{settings.name}"
    log_directory: str | None = str(job_dir / "workers")
    if settings.worker_command:
        # Sandboxed (the engine itself is, on the service node): each worker starts in
        # its sandbox on its node, as the job user, scratch in the sandbox's own /tmp.
        # Its job runs and logs in the job's Slurm folder (a host path the engine cannot
        # see, so it leaves the log options to Slurm's default in that folder).
        python = shlex.join(settings.worker_command)
        local_directory = str(SANDBOX_SCRATCH)
        log_directory = None
        directives.append(f"--chdir={settings.worker_folder}")
    else:
        (job_dir / "workers").mkdir(exist_ok=True)
    failures: list[str] = []
    with (
        dask.config.set(DASK_SETTINGS),
        _closed_quietly_on_error(
            SLURMCluster(
                job_cls=_submission_watched(failures),
                cores=resources.cores,
                processes=1,
                memory=f"{resources.memory // 1024**2}MiB",
                walltime=format_duration(resources.walltime),
                queue=placement.partition,
                account=placement.account,
                job_name=worker_job_name(settings.name),
                job_extra_directives=directives,
                job_script_prologue=[*profile.prologue, *thread_environment(resources.cores)],
                python=python,
                interface=profile.interface,
                scheduler_options=scheduler_options,
                security=security,
                protocol="tls://" if security else None,
                local_directory=local_directory,
                log_directory=log_directory,
                death_timeout=profile.worker_death_timeout,
                worker_extra_args=lifetime,
                shebang="#!/bin/bash",
            )
        ) as cluster,
        Client(cluster, security=security) as client,
    ):
        cluster.adapt(minimum=1, maximum=resources.workers)
        _wait_for_a_worker(client, failures, profile.startup_timeout)
        yield client


@contextmanager
def _closed_quietly_on_error(cluster: Any) -> Iterator[Any]:
    """`cluster`, closed on the way out; after an error, its own close may fail too (over
    worker jobs Slurm refused, say), and the first error is the one to tell."""
    try:
        yield cluster
    except BaseException:
        try:
            cluster.close()
        except Exception as exc:  # the first error is raised below
            log.warning("closing the job's Slurm cluster after an error: %s", type(exc).__name__)
        raise
    cluster.close()


def _submission_watched(failures: list[str]) -> Any:
    """SLURMCluster's job class, noting why a worker job could not be submitted (sbatch
    refused it), which dask-jobqueue itself only logs and retries."""
    from dask_jobqueue.slurm import SLURMJob

    class WatchedJob(SLURMJob):
        async def start(self) -> None:
            try:
                await super().start()
            except Exception as exc:
                lines = [line for line in str(exc).splitlines() if line.strip()]
                failures.append(lines[-1] if lines else type(exc).__name__)
                raise

    return WatchedJob


def _wait_for_a_worker(client: Client, failures: list[str], timeout: float) -> None:
    """Go on once a worker joined; fail at once if Slurm refused the worker jobs (a job
    that cannot start fails in seconds, not at the start-up timeout)."""
    deadline = time.monotonic() + timeout
    while not client.scheduler_info()["workers"]:
        if failures:
            raise ProfileError(
                f"Slurm refused the job's worker jobs: {failures[-1]}",
                fix="run 'tre cluster check' on the service node, and see the profile's "
                "partition, account and sbatch_extra",
            )
        if time.monotonic() > deadline:
            raise ProfileError(
                f"no worker of the job started within {format_duration(int(timeout))}",
                fix="see the job's worker logs (tre logs JOB) and the Slurm queue (squeue)",
            )
        time.sleep(0.2)
