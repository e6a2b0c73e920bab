"""Start the Dask cluster a job runs on. One cluster per job, torn down with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
from distributed import Client, LocalCluster

from tre.models import Resources

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
    threads = str(cores)
    return {
        **base,
        "POLARS_MAX_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
    }


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
