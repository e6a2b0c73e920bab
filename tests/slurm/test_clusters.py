"""The job's own Dask cluster: sized by the job's resources, quiet on the network."""

import os

import polars as pl

from slurm.clusters import local_cluster
from tre.models import Resources


def _worker_view():
    return os.environ.get("POLARS_MAX_THREADS"), pl.thread_pool_size()


def test_workers_get_the_cores_the_job_asked_for_and_nothing_listens_on_8787(tmp_path):
    resources = Resources(workers=2, cores=1, memory="1GiB")
    with local_cluster(resources, tmp_path / "scratch") as client:
        views = client.run(_worker_view)
        info = client.scheduler_info()
        ports = client.run_on_scheduler(
            lambda dask_scheduler: [
                s.getsockname()[1] for s in dask_scheduler.http_server._sockets.values()
            ]
        )
    assert len(views) == 2
    assert set(views.values()) == {("1", 1)}
    assert all(w["nthreads"] == 1 for w in info["workers"].values())
    assert ports
    assert 8787 not in ports
