"""Start the Dask cluster a job runs on. One cluster per job, torn down with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
from distributed import Client, LocalCluster

from tre.models import Resources

# Decrypted data must not reach disk unencrypted: no spilling to disk, and the workers'
# scratch space is the job's own folder, wiped when the job ends.
DASK_SETTINGS = {
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.target": False,
    "distributed.logging.distributed": "warning",
    "distributed.admin.tick.limit": "30s",
}


@contextmanager
def local_cluster(resources: Resources, scratch: Path) -> Iterator[Client]:
    """A LocalCluster sized by the job's resources, with worker processes."""
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (
        dask.config.set(DASK_SETTINGS),
        LocalCluster(
            n_workers=resources.workers,
            threads_per_worker=resources.cores,
            memory_limit=resources.memory,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
            local_directory=str(scratch),
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
