"""Benchmark `slurm_job`: time from `tre submit` to `awaiting_review` on the test Slurm
cluster (slurm-runner, one allocation per job) next to the embedded default, in the
same run, on the same data:

- a trivial job: a count table over a tiny dataset (300 rows), so the figure is the
  fixed cost of a job (allocation, scheduler, workers, TLS, checking);
- the 10-million-row table job of `table_job` (count and mean by authority x age band).

Both homes are the same home (one ingest), the Slurm one a copy with its backend
switched. Needs the test cluster: bash slurm/devcluster/start.sh.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.table_job import DATASET, PROJECT, SHAPES, _round, _say, _session, build_home, job_spec
from jobs.spec import JobSpec
from tre.demo.synth import descriptor_path, generate
from tre.models import JobState
from tre.service import datasets, projects
from tre.service.dispatcher import Dispatcher
from tre.service.jobs import submit_job
from tre.store import repo

NAME = "slurm_job"
TINY = "early_help"
TINY_PROJECT = "bench-tiny"


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    say = _say(console)
    if subprocess.run(["sinfo", "-h"], capture_output=True, check=False).returncode != 0:
        raise SystemExit("slurm_job needs the test cluster: bash slurm/devcluster/start.sh")
    say(f"generating {rows:,} synthetic residents and a 300-row dataset")
    sources = generate(work / "sources", rows=rows, seed=seed)
    tiny = generate(work / "tiny-sources", rows=1_000, seed=seed)[TINY]
    local, _ = build_home(work / "local", sources[DATASET])
    _add_tiny(local, tiny)
    slurm = work / "slurm"
    shutil.copytree(local, slurm)
    config = slurm / "tre.yaml"
    config.write_text(
        config.read_text()
        .replace("backend: local", "backend: slurm-runner")
        .replace("slurm_profile: null", "slurm_profile: local-test")
    )
    specs = {"trivial": _tiny_spec(), "table_10m": job_spec(SHAPES[0])}
    figures: dict[str, Any] = {"benchmark": NAME, "rows": rows, "repeat": repeat, "jobs": {}}
    for label, spec in specs.items():
        entry: dict[str, Any] = {}
        for backend, home in (("local", local), ("slurm-runner", slurm)):
            runs = [_submit_to_review(home, spec) for _ in range(repeat)]
            say(f"{label} on {backend}: " + ", ".join(f"{r['total_s']:.2f}s" for r in runs))
            entry[backend] = {
                "runs": runs,
                "best_s": min(r["total_s"] for r in runs),
                "median_s": _round(statistics.median(r["total_s"] for r in runs)),
            }
        entry["ratio"] = _round(entry["slurm-runner"]["best_s"] / entry["local"]["best_s"], 2)
        figures["jobs"][label] = entry
    return figures


def _add_tiny(home: Path, source: Path) -> None:
    with _session(home, "ada") as s:
        datasets.ingest_dataset(s, TINY, source, descriptor=descriptor_path(TINY))
        s.actor = "rita"
        project = repo.get_project(s.conn, PROJECT)
        projects.request_project(
            s,
            {
                "name": TINY_PROJECT,
                "title": "Benchmark: trivial jobs",
                "purpose": "Fixed costs.",
                "lead": "rita",
                "expires": project.expires,
                "quota": project.quota.model_dump(mode="json"),  # with units, as written
                "datasets": [{"dataset": TINY, "columns": ["local_authority"]}],
            },
        )
        s.actor = "bob"
        projects.approve_project(s, TINY_PROJECT)


def _tiny_spec() -> JobSpec:
    return JobSpec.model_validate(
        {
            "project": TINY_PROJECT,
            "title": "Benchmark: trivial job",
            "datasets": {TINY: ["local_authority"]},
            "resources": {"workers": 1, "cores": 1, "memory": "1GiB", "walltime": "10m"},
            "steps": [
                {"kind": "table", "name": "tiny", "dataset": TINY, "rows": ["local_authority"]}
            ],
        }
    )


def _submit_to_review(home: Path, spec: JobSpec) -> dict[str, Any]:
    started = time.time()
    with _session(home, "rita") as s:
        job = submit_job(s, spec)
    with _session(home, "ada") as s:
        Dispatcher(s).run(once=True)
        job = repo.get_job(s.conn, job.id)
        folder = s.home.job_dir(job.id)
    done = time.time()
    if job.state is not JobState.AWAITING_REVIEW:
        raise RuntimeError(f"job {job.id} ended {job.state.value}: {job.reason}")
    meta = json.loads((folder / "result" / "result.json").read_text())
    return {"job_id": job.id, "total_s": _round(done - started), "engine_s": meta["seconds"]}


def render(figures: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"submit -> awaiting_review ({figures['rows']:,} rows), best of {figures['repeat']}"
    )
    for column in (
        "job",
        "embedded default",
        "Slurm (slurm-runner)",
        "Slurm / embedded",
        "engine s (local / slurm)",
    ):
        table.add_column(column, justify="right")
    for label, entry in figures["jobs"].items():
        local, slurm = entry["local"], entry["slurm-runner"]
        engine = (
            f"{min(r['engine_s'] for r in local['runs']):.2f} / "
            f"{min(r['engine_s'] for r in slurm['runs']):.2f}"
        )
        table.add_row(
            label,
            f"{local['best_s']:.2f}s",
            f"{slurm['best_s']:.2f}s",
            f"{entry['ratio']:.2f}x",
            engine,
        )
    console.print(table)
