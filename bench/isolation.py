"""Benchmark `isolation`: what the sandbox and the key service add to a job.

Two homes are built from the same synthetic residents, alike in everything but
`isolation`: `none` (the path before the sandbox: the job runs as the TRE's user and
opens the keys itself) and `sandbox` (the job runs in bubblewrap as `tre-job`, keys
only through the key service). Two jobs run in each, alternately, best of `repeat`:

- trivial: one count table over one column (what a job costs when it does nothing);
- table: the 54-cell count + mean table of `table_job`.

Each is timed from submission to `awaiting_review` (the dispatcher's own loop), and
the sandbox's figure is reported against the unsandboxed one in the same run. Beside
them: one key service round trip (a `ping`), the same through the key gateway (mutual
TLS on loopback; on an open connection and on a new one), bubblewrap starting and ending
`/bin/true` as the job user, and the sandbox preflight that `tre run` pays once before
it takes any job (`slurm/preflight.py`), against the trivial sandboxed job.
"""

from __future__ import annotations

import subprocess
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from jobs.spec import JobSpec
from slurm import sandbox
from tre.demo.synth import descriptor_path, generate
from tre.models import JobState
from tre.service import datasets, people, projects
from tre.service.dispatcher import Dispatcher
from tre.service.jobs import submit_job
from tre.service.session import Session
from tre.store import repo

NAME = "isolation"
PROJECT = "bench"
VALUE = "gp_visits_last_year"
COLUMNS = ["local_authority", "age_band", VALUE]
RESOURCES = {"workers": 2, "cores": 1, "memory": "4GiB", "walltime": "30m"}
JOBS = {
    "trivial": [
        {"kind": "table", "name": "n", "dataset": "residents", "rows": ["local_authority"]}
    ],
    "table": [
        {
            "kind": "table",
            "name": "count",
            "dataset": "residents",
            "rows": ["local_authority"],
            "columns": ["age_band"],
        },
        {
            "kind": "table",
            "name": "mean",
            "dataset": "residents",
            "rows": ["local_authority"],
            "columns": ["age_band"],
            "value": VALUE,
            "statistic": "mean",
        },
    ],
}


def _home(root: Path, source: Path, isolation: str) -> Path:
    home = root / isolation
    people.init_home(home, admin="ada", full_name="Ada", demo=True, isolation=isolation)  # type: ignore[arg-type]
    s = Session.open(home, "ada")
    try:
        people.register_person(s, name="bob", full_name="Bob", roles=["admin"])
        people.confirm_admin(s, "bob")
        people.register_person(
            s,
            name="rita",
            full_name="Rita",
            roles=["researcher"],
            accredited_until=date.today() + timedelta(days=365),
        )
        datasets.ingest_dataset(
            s,
            "residents",
            source,
            descriptor=descriptor_path("residents"),
            rows_per_group=1_000_000,
        )
        s.actor = "rita"
        projects.request_project(
            s,
            {
                "name": PROJECT,
                "title": "Benchmark",
                "purpose": "Timing what the sandbox adds to a job.",
                "lead": "rita",
                "expires": (date.today() + timedelta(days=30)).isoformat(),
                "quota": RESOURCES,
                "datasets": [{"dataset": "residents", "columns": COLUMNS}],
            },
        )
        s.actor = "bob"
        projects.approve_project(s, PROJECT)
    finally:
        s.close()
    return home


def _job_seconds(home: Path, steps: list[dict[str, Any]], workers: int | None = None) -> float:
    """Submission to awaiting_review of one job of `steps` (with `workers`, if given)."""
    resources = RESOURCES if workers is None else {**RESOURCES, "workers": workers}
    spec = JobSpec.model_validate(
        {
            "project": PROJECT,
            "title": "bench",
            "datasets": {"residents": COLUMNS},
            "resources": resources,
            "steps": steps,
        }
    )
    s = Session.open(home, "rita")
    try:
        started = time.perf_counter()
        job = submit_job(s, spec)
        s.actor = "ada"
        Dispatcher(s).run(once=True, interval=0.05)
        took = time.perf_counter() - started
        state = repo.get_job(s.conn, job.id).state
    finally:
        s.close()
    if state is not JobState.AWAITING_REVIEW:
        raise RuntimeError(f"the benchmark job ended {state.value}")
    return took


def _round_trip(home: Path, repeat: int) -> float:
    from tre.home import Home
    from tre.keyservice.process import ensure_running

    client = ensure_running(Home.open(home))
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(200):
            client.ping()
        best = min(best, (time.perf_counter() - started) / 200)
    return best


def _gateway_round_trips(home: Path, repeat: int) -> tuple[float, float]:
    """(a ping through the key gateway on an open connection, one on a new connection:
    TCP, the TLS handshake with both certificates, the ping), best of `repeat`, on
    loopback: what a job on another node pays per request and per connection."""
    import datetime
    import socket

    from tre.home import Home
    from tre.keys.keyclient import GatewayTls, ServiceMasterKeys
    from tre.keys.tls_ca import CA_CERT, issue_job
    from tre.keyservice.gateway_process import ensure_gateway, stop_gateway, tls_dir

    opened = Home.open(home)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    ensure_gateway(opened, f"127.0.0.1:{port}")
    try:
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        issued = issue_job(tls_dir(opened), 1, until)
        (home / "bench-cert.pem").write_bytes(issued.cert)
        (home / "bench-key.pem").write_bytes(issued.key)
        tls = GatewayTls(
            str(tls_dir(opened) / CA_CERT),
            str(home / "bench-cert.pem"),
            str(home / "bench-key.pem"),
        )
        address = f"tls://127.0.0.1:{port}"
        client = ServiceMasterKeys(address, tls=tls)
        steady = fresh = float("inf")
        for _ in range(repeat):
            client.ping()
            started = time.perf_counter()
            for _ in range(200):
                client.ping()
            steady = min(steady, (time.perf_counter() - started) / 200)
            started = time.perf_counter()
            for _ in range(20):
                once = ServiceMasterKeys(address, tls=tls)
                once.ping()
                once.close()
            fresh = min(fresh, (time.perf_counter() - started) / 20)
        client.close()
    finally:
        stop_gateway(opened)
    return steady, fresh


def _bwrap_true(repeat: int) -> float:
    user = sandbox.job_user()
    command = [
        "bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "--unshare-net",
        "--unshare-ipc", "--unshare-uts", "--cap-add", "CAP_SETUID,CAP_SETGID", "--",
        "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", "/bin/true",
    ]  # fmt: skip
    best = float("inf")
    for _ in range(repeat * 5):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    """Build both homes in `work`, time both jobs in each; every figure, in seconds."""
    console.print(f"[dim]isolation: generating {rows:,} residents and two homes[/]")
    source = generate(work / "sources", rows=rows, seed=seed)["residents"]
    homes = {kind: _home(work, source, kind) for kind in ("none", "sandbox")}
    figures: dict[str, Any] = {"benchmark": NAME, "rows": rows, "repeat": repeat, "jobs": {}}
    for name, steps in JOBS.items():
        best = {kind: float("inf") for kind in homes}
        for _ in range(repeat):
            for kind, home in homes.items():  # alternate, so drift hits both alike
                best[kind] = min(best[kind], _job_seconds(home, steps))
        figures["jobs"][name] = {
            "none_s": round(best["none"], 3),
            "sandbox_s": round(best["sandbox"], 3),
            "added_s": round(best["sandbox"] - best["none"], 3),
            "ratio": round(best["sandbox"] / best["none"], 3),
        }
    figures["key_service_round_trip_ms"] = round(_round_trip(homes["sandbox"], repeat) * 1000, 3)
    steady, fresh = _gateway_round_trips(homes["sandbox"], repeat)
    figures["gateway_round_trip_ms"] = round(steady * 1000, 3)
    figures["gateway_new_connection_ms"] = round(fresh * 1000, 3)
    figures["gateway_vs_socket"] = round(steady * 1000 / figures["key_service_round_trip_ms"], 2)
    figures["bwrap_true_ms"] = round(_bwrap_true(repeat) * 1000, 1)
    preflight = _preflight(homes["sandbox"], repeat)
    figures["preflight_ms"] = round(preflight * 1000, 1)
    figures["preflight_vs_trivial_job"] = round(
        preflight / figures["jobs"]["trivial"]["sandbox_s"], 3
    )
    return figures


def _preflight(home: Path, repeat: int) -> float:
    """`check_can_start` on a home whose key service already runs, best of `repeat`."""
    from tre.service.preflight import check_can_start

    s = Session.open(home, "ada")
    try:
        best = float("inf")
        for _ in range(repeat * 3):
            started = time.perf_counter()
            check_can_start(s)
            best = min(best, time.perf_counter() - started)
    finally:
        s.close()
    return best


def render(figures: dict[str, Any], console: Console) -> None:
    table = Table(title=f"isolation: {figures['rows']:,} rows, best of {figures['repeat']}")
    for column in ("job", "isolation none (s)", "sandbox (s)", "added (s)", "ratio"):
        table.add_column(column)
    for name, got in figures["jobs"].items():
        table.add_row(
            name,
            f"{got['none_s']:.3f}",
            f"{got['sandbox_s']:.3f}",
            f"{got['added_s']:+.3f}",
            f"{got['ratio']:.2f}x",
        )
    console.print(table)
    console.print(
        f"key service round trip: {figures['key_service_round_trip_ms']:.3f} ms; "
        f"bubblewrap + setpriv + /bin/true: {figures['bwrap_true_ms']:.1f} ms"
    )
    if "gateway_round_trip_ms" in figures:
        console.print(
            f"through the key gateway (mutual TLS, loopback): "
            f"{figures['gateway_round_trip_ms']:.3f} ms a request "
            f"({figures['gateway_vs_socket']:.2f}x the socket), "
            f"{figures['gateway_new_connection_ms']:.3f} ms with a new connection"
        )
    if "preflight_ms" in figures:
        console.print(
            f"sandbox preflight (once per dispatcher start): {figures['preflight_ms']:.1f} ms, "
            f"{figures['preflight_vs_trivial_job']:.2f}x the trivial sandboxed job"
        )
