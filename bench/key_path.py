"""Benchmark `key_path`: what the key gateway (mutual TLS, issue 25) adds to a job on
Slurm, against the key service's Unix socket, on the same cluster and the same node.

Two sandboxed homes, alike in everything but how a job's processes reach keys, run the
same jobs on the test cluster's service node (`vm`, slurm-runner, root submits):

- `socket`: profile local-test, every task binds the key service's Unix socket;
- `gateway`: the same profile with `key_gateway` set, so no task has the socket and
  every unwrap goes over mutual TLS to the gateway, as on a compute node elsewhere.

Jobs (alternately, best of `repeat`), timed from submission to `awaiting_review`:
- trivial: one count table over one column of one worker;
- table: the count + mean table of `isolation`, two workers.

The difference is what the TLS key path adds per job; divided by the job's workers, per
worker (each opens its own connections, and the handshake is most of the cost: see
`isolation`'s per-request figures). Needs the test cluster: bash slurm/devcluster/start.sh.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.isolation import JOBS, _job_seconds
from bench.isolation import _home as isolation_home
from tre.demo.synth import generate

NAME = "key_path"
GATEWAY = "10.77.0.1:7643"  # the test cluster's service node (slurm/devcluster/nodes.sh)
WORKERS = {"trivial": 1, "table": 2}


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    from tre.home import Home
    from tre.keyservice.gateway_process import stop_gateway
    from tre.keyservice.process import stop as stop_service

    if subprocess.run(["sinfo", "-h"], capture_output=True, check=False).returncode != 0:
        raise SystemExit("key_path needs the test cluster: bash slurm/devcluster/start.sh")
    rows = min(rows, 1_000_000)  # the key path's cost does not grow with rows
    console.print(f"[dim]key_path: generating {rows:,} synthetic residents[/]")
    source = generate(work / "sources", rows=rows, seed=seed)["residents"]
    socket_home = isolation_home(work, source, "sandbox")
    gateway_home = work / "gateway"
    shutil.copytree(socket_home, gateway_home, ignore=shutil.ignore_patterns("pid", "lock"))
    profile = (Path(__file__).parents[1] / "slurm" / "profiles" / "local-test.yaml").read_text()
    (work / "gateway-profile.yaml").write_text(profile + f"key_gateway: {GATEWAY}\n")
    for home, name in ((socket_home, "local-test"), (gateway_home, work / "gateway-profile.yaml")):
        config = home / "tre.yaml"
        config.write_text(
            config.read_text()
            .replace("backend: local", "backend: slurm-runner")
            .replace("slurm_profile: null", f"slurm_profile: {name}")
        )
    homes = {"socket": socket_home, "gateway": gateway_home}
    figures: dict[str, Any] = {"benchmark": NAME, "rows": rows, "repeat": repeat, "jobs": {}}
    try:
        for label, steps in JOBS.items():
            runs: dict[str, list[float]] = {"socket": [], "gateway": []}
            for _ in range(repeat):
                for path, home in homes.items():
                    runs[path].append(_job_seconds(home, steps, WORKERS[label]))
            best = {path: min(times) for path, times in runs.items()}
            added = best["gateway"] - best["socket"]
            figures["jobs"][label] = {
                "workers": WORKERS[label],
                "socket_s": round(best["socket"], 3),
                "gateway_s": round(best["gateway"], 3),
                "socket_median_s": round(statistics.median(runs["socket"]), 3),
                "gateway_median_s": round(statistics.median(runs["gateway"]), 3),
                "added_per_job_s": round(added, 3),
                "added_per_worker_s": round(added / WORKERS[label], 3),
                "ratio": round(best["gateway"] / best["socket"], 3),
            }
            console.print(
                f"[dim]key_path {label}: socket {runs['socket']}, gateway {runs['gateway']}[/]"
            )
    finally:
        for home in homes.values():
            opened = Home.open(home)
            stop_gateway(opened)
            stop_service(opened)
    return figures


def render(figures: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"key path on Slurm (vm node, slurm-runner), best of {figures['repeat']}: "
        "submit -> awaiting_review"
    )
    for column in (
        "job",
        "workers",
        "Unix socket",
        "key gateway (mTLS)",
        "added per job",
        "added per worker",
        "gateway / socket",
    ):
        table.add_column(column, justify="right")
    for label, entry in figures["jobs"].items():
        table.add_row(
            label,
            str(entry["workers"]),
            f"{entry['socket_s']:.2f}s",
            f"{entry['gateway_s']:.2f}s",
            f"{entry['added_per_job_s']:+.2f}s",
            f"{entry['added_per_worker_s']:+.2f}s",
            f"{entry['ratio']:.2f}x",
        )
    console.print(table)
