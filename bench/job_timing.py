"""Timing helpers for the job benchmarks: landmarks in a job's log, a job-sized
LocalCluster started on its own, and a fresh interpreter's imports."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

from slurm.clusters import local_cluster
from tre.models import Resources

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (.*)$")


def parse_job_log(text: str) -> dict[str, float]:
    """Wall-clock times of the job log's landmarks (slurm.launch writes them).

    first       the job process has imported everything and read its input
    cluster_up  "dask cluster up in N s"
    finished    "job N finished in N s": steps done, cluster shut down, results written
    """
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if not match:
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        message = match.group(2)
        found.setdefault("first", at)
        if up := re.match(r"dask cluster up in ([\d.]+)s", message):
            found["cluster_up"] = at
            found["cluster_up_logged"] = float(up.group(1))
        elif re.match(r"job \d+ finished in", message):
            found["finished"] = at
    missing = {"first", "cluster_up", "finished"} - set(found)
    if missing:
        raise RuntimeError(f"the job log lacks {', '.join(sorted(missing))}:\n{text}")
    return found


def cluster_alone(resources: Resources, scratch: Path, repeat: int) -> dict[str, float]:
    """Start and stop a LocalCluster sized like the job, best of `repeat`."""
    ups, downs = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        with warnings.catch_warnings(), local_cluster(resources, scratch) as client:
            # The scheduler runs here; other clusters on the machine may hold its port.
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            client.submit(sum, [1, 2], pure=False).result()
            up = time.perf_counter()
        ups.append(up - started)
        downs.append(time.perf_counter() - up)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"up_s": round(min(ups), 3), "down_s": round(min(downs), 3)}


def interpreter_start() -> float:
    """Seconds for a fresh interpreter to import what the job process imports."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import slurm.launch"], check=True)
    return round(time.perf_counter() - started, 3)
