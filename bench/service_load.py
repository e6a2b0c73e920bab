"""Benchmark `service_load`: `tre serve` under 50 researchers at once.

`tre serve` runs in one process; the load comes from a second process on loopback: 50
concurrent researchers (asyncio + httpx, one connection each), each with their own
token, for a bounded time (30 s). Each researcher loops: submit a job (POST /api/jobs),
then poll it twice (GET /api/jobs/{id}) and list their jobs once (GET /api/jobs).

The dispatcher is OFF: jobs stay queued, so the figures are the service's own (HTTP,
authentication per request, policy checks, SQLite writes and the job folder), not the
jobs'. Afterwards the ids every client got back are compared with the store: no job may
be lost (acknowledged but not stored), duplicated (stored twice, or stored without an
acknowledgement) or misattributed.

Reported: requests per second, the error count (must be zero), latency percentiles per
kind of request, and the job accounting.

    python -m bench.run --only service_load
    python -m bench.service_load --load URL TOKENS.json SECONDS OUT.json   (the load side)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console
from rich.table import Table

from tre.demo.synth import descriptor_path, generate
from tre.models import JobState
from tre.service import datasets, people, projects, tokens
from tre.service.session import Session
from tre.store import repo

NAME = "service_load"
CLIENTS = 50
SECONDS = 30.0
DATASET = "residents"
PROJECT = "bench-load"
POLLS_PER_SUBMIT = 2
SPEC = {
    "project": PROJECT,
    "title": "Residents by local authority",
    "datasets": {DATASET: ["local_authority", "age_band"]},
    "resources": {"workers": 1, "cores": 1, "memory": "1GiB", "walltime": "10m"},
    "steps": [
        {"kind": "table", "name": "by_area", "dataset": DATASET, "rows": ["local_authority"]}
    ],
}


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    """The benchmark as `bench.run` calls it (rows and repeat do not apply: the load is
    bounded by time, on a small dataset)."""
    seconds = float(os.environ.get("TRE_BENCH_SERVICE_SECONDS", SECONDS))
    clients = int(os.environ.get("TRE_BENCH_SERVICE_CLIENTS", CLIENTS))
    return measure(work, clients=clients, seconds=seconds, seed=seed, console=console)


def measure(
    work: Path, *, clients: int, seconds: float, seed: int = 7, console: Console | None = None
) -> dict[str, Any]:
    """Build a home with `clients` researchers, serve it, load it, check the store."""
    console = console or Console(highlight=False)
    started = time.perf_counter()

    def say(text: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {text}")

    say(f"building a home with {clients} researchers")
    home, issued = build_home(work, clients, seed)
    token_file = work / "tokens.json"
    token_file.touch(mode=0o600)
    token_file.write_text(json.dumps(issued))
    url, server, log = start_server(work, home)
    try:
        say(f"tre serve is up at {url} (dispatcher off); {clients} researchers for {seconds:g} s")
        out = work / "load.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.service_load",
                "--load",
                url,
                str(token_file),
                str(seconds),
                str(out),
            ],
            check=True,
        )
        load = json.loads(out.read_text())
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    say("comparing what the clients got back with the store")
    figures = summarise(load, account(home, load), clients, seconds)
    server_log = (work / "serve.log").read_text()
    figures["token_in_server_log"] = any(t in server_log for t in issued.values())
    return figures


def build_home(work: Path, clients: int, seed: int) -> tuple[Path, dict[str, str]]:
    """A home with `clients` researchers in one approved project; a token for each."""
    source = generate(work / "sources", rows=2_000, seed=seed)[DATASET]
    home = work / "home"
    people.init_home(home, admin="ada", full_name="Ada Admin", demo=True)
    s = Session.open(home, "ada")
    try:
        people.register_person(s, name="bob", full_name="Bob", roles=["admin"])
        people.confirm_admin(s, "bob")  # a new admin approves nothing until confirmed
        names = [f"r{i:03d}" for i in range(clients)]
        for name in names:
            people.register_person(
                s,
                name=name,
                full_name=name,
                roles=["researcher"],
                accredited_until=date(2099, 1, 1),
            )
        datasets.ingest_dataset(s, DATASET, source, descriptor=descriptor_path(DATASET))
        s.actor = names[0]
        projects.request_project(
            s,
            {
                "name": PROJECT,
                "title": "Service load",
                "purpose": "Benchmark the service.",
                "lead": names[0],
                "members": names,
                "expires": "2099-01-01",
                "quota": {"workers": 1, "cores": 1, "memory": "1GiB", "walltime": "30m"},
                "datasets": [{"dataset": DATASET, "columns": ["local_authority", "age_band"]}],
            },
        )
        s.actor = "bob"
        projects.approve_project(s, PROJECT)
        s.actor = "ada"
        issued = {name: tokens.issue_token(s, name)[1] for name in names}
    finally:
        s.close()
    return home, issued


def start_server(work: Path, home: Path) -> tuple[str, subprocess.Popen[bytes], IO[str]]:
    """`tre serve` for `home` in its own process on a free port, once it answers."""
    port = _free_port()
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tre.cli.main",
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for(url, server)
    return url, server, log


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("tre serve exited; see serve.log in the work folder")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("tre serve did not start within 60 s")


# -- the load side (a process of its own) ---------------------------------------------------


async def researcher(
    url: str,
    name: str,
    token: str,
    deadline: float,
    log: list[tuple[str, float, int]],
    failures: list[str],
) -> list[int]:
    """One researcher until `deadline`: submit, poll the job, list; the ids got back."""
    submitted: list[int] = []
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as http:

        async def call(kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
            began = time.perf_counter()
            try:
                response = await http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                log.append((kind, time.perf_counter() - began, 0))
                failures.append(f"{kind}: {type(exc).__name__}: {exc}")
                return None
            log.append((kind, time.perf_counter() - began, response.status_code))
            return response

        while time.monotonic() < deadline:
            response = await call("submit", "POST", "/api/jobs", json={"spec": SPEC})
            if response is None or response.status_code != 201:
                continue
            job = int(response.json()["id"])
            submitted.append(job)
            for _ in range(POLLS_PER_SUBMIT):
                await call("poll", "GET", f"/api/jobs/{job}")
            await call("list", "GET", "/api/jobs")
    return submitted


async def load(url: str, issued: dict[str, str], seconds: float) -> dict[str, Any]:
    """Every researcher at once for `seconds`; what each got back, and every request."""
    log: list[tuple[str, float, int]] = []
    failures: list[str] = []
    began = time.perf_counter()
    deadline = time.monotonic() + seconds
    results = await asyncio.gather(
        *(researcher(url, name, token, deadline, log, failures) for name, token in issued.items())
    )
    return {
        "elapsed": time.perf_counter() - began,
        "submitted": dict(zip(issued, results, strict=True)),
        "requests": log,
        "failures": failures,
    }


def account(home: Path, load_result: dict[str, Any]) -> dict[str, Any]:
    """Jobs the clients were told of against jobs the store holds."""
    s = Session.open(home, "ada")
    try:
        stored = repo.list_jobs(s.conn)
    finally:
        s.close()
    told = {job: name for name, ids in load_result["submitted"].items() for job in ids}
    told_count = sum(len(ids) for ids in load_result["submitted"].values())
    by_id = {job.id: job for job in stored}
    return {
        "acknowledged": told_count,
        "stored": len(stored),
        "lost": sorted(j for j in told if j not in by_id),
        "duplicated": told_count - len(told),  # the same id acknowledged twice
        "unacknowledged": sorted(j.id for j in stored if j.id not in told),
        "misattributed": sorted(
            j for j, name in told.items() if j in by_id and by_id[j].submitter != name
        ),
        "not_queued": sorted(j.id for j in stored if j.state is not JobState.QUEUED),
    }


def summarise(
    load_result: dict[str, Any], jobs: dict[str, Any], clients: int, seconds: float
) -> dict[str, Any]:
    """The figures: throughput, errors, latency per kind, and the job accounting."""
    requests = load_result["requests"]
    elapsed = load_result["elapsed"]
    kinds: dict[str, dict[str, Any]] = {}
    for kind in ("submit", "poll", "list"):
        times = sorted(t for k, t, _ in requests if k == kind)
        if not times:
            continue
        kinds[kind] = {
            "count": len(times),
            "p50_ms": round(1000 * statistics.median(times), 1),
            "p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 1),
            "p99_ms": round(1000 * times[int(0.99 * (len(times) - 1))], 1),
            "max_ms": round(1000 * times[-1], 1),
        }
    errors = [status for _, _, status in requests if not 200 <= status < 300]
    return {
        "benchmark": NAME,
        "clients": clients,
        "seconds": seconds,
        "elapsed": round(elapsed, 2),
        "dispatcher": "off (jobs stay queued)",
        "requests": len(requests),
        "requests_per_second": round(len(requests) / elapsed, 1),
        "submits_per_second": round(jobs["acknowledged"] / elapsed, 1),
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
        "client_failures": sorted(set(load_result.get("failures", [])))[:10],
        "kinds": kinds,
        "jobs": jobs,
        "jobs_ok": not (
            jobs["lost"] or jobs["duplicated"] or jobs["unacknowledged"] or jobs["misattributed"]
        )
        and jobs["stored"] == jobs["acknowledged"],
    }


def render(figures: dict[str, Any], console: Console) -> None:
    """Print the figures as a table."""
    table = Table(title=f"service_load: {figures['clients']} researchers, {figures['seconds']:g} s")
    for column in ("request", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for kind, k in figures["kinds"].items():
        table.add_row(
            kind,
            str(k["count"]),
            str(k["p50_ms"]),
            str(k["p95_ms"]),
            str(k["p99_ms"]),
            str(k["max_ms"]),
        )
    console.print(table)
    jobs = figures["jobs"]
    console.print(
        f"{figures['requests']:,} requests in {figures['elapsed']} s: "
        f"[bold]{figures['requests_per_second']} requests/s[/], "
        f"{figures['submits_per_second']} submissions/s; errors: [bold]{figures['errors']}[/]"
        + (f" (statuses {figures['error_statuses']})" if figures["errors"] else "")
    )
    verdict = "[green]ok[/]" if figures["jobs_ok"] else "[red]NOT ok[/]"
    console.print(
        f"jobs: {jobs['acknowledged']} acknowledged, {jobs['stored']} stored; lost "
        f"{len(jobs['lost'])}, duplicated {jobs['duplicated']}, unacknowledged "
        f"{len(jobs['unacknowledged'])}, misattributed {len(jobs['misattributed'])}: {verdict}; "
        f"dispatcher {figures['dispatcher']}"
    )


def main(argv: list[str]) -> int:
    """The load side: `--load URL TOKENS.json SECONDS OUT.json`."""
    if len(argv) != 5 or argv[0] != "--load":
        print(__doc__)
        return 2
    url, token_file, seconds, out = argv[1], Path(argv[2]), float(argv[3]), Path(argv[4])
    issued = json.loads(token_file.read_text())
    result = asyncio.run(load(url, issued, seconds))
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
