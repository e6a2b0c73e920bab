"""Jobs on a real Slurm cluster (the one slurm/devcluster/start.sh runs; `make test`
starts it and turns a missing cluster into a failure)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, cli_for, write_spec
from tests.e2e.test_lifecycle import slow_job, start_dispatcher, wait_for
from tre import audit
from tre.models import Job, JobState
from tre.service.dispatcher import Dispatcher
from tre.service.session import Session
from tre.store import repo

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture
def scli(slurm_home, capsys):
    return cli_for(slurm_home, capsys)


def job(home: Path, job_id: int) -> Job:
    s = Session.open(home, "ada")
    try:
        return repo.get_job(s.conn, job_id)
    finally:
        s.close()


def settle(home: Path, timeout: float = 180.0) -> None:
    """Run dispatcher passes until no job is active; on timeout, show what Slurm says."""
    s = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(s)
        deadline = time.monotonic() + timeout
        while dispatcher.tick():
            if time.monotonic() > deadline:
                queue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
                pytest.fail(f"jobs still active after {timeout}s; squeue:\n{queue}")
            time.sleep(0.5)
    finally:
        s.close()


def slurm_state(slurm_id: int) -> str:
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", str(slurm_id)], capture_output=True, text=True
    ).stdout
    return next((t.split("=", 1)[1] for t in out.split() if t.startswith("JobState=")), "")


def next_slurm_id() -> int:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    return int(
        next(line.split("=")[1] for line in out.splitlines() if line.startswith("NEXT_JOB_ID"))
    )


def test_table_and_python_jobs_run_on_slurm_like_on_the_embedded_default(
    scli, slurm_home, cli, home
):
    for spec in ("health_by_area.yaml", "early_help/summary.yaml"):
        assert scli("submit", EXAMPLES / spec, who="rita").code == 0
    settle(slurm_home)
    table_job, python_job = job(slurm_home, 1), job(slurm_home, 2)
    assert table_job.state is JobState.AWAITING_REVIEW, table_job.reason
    assert python_job.state is JobState.AWAITING_REVIEW, python_job.reason
    assert slurm_state(table_job.handle["slurm_job_id"]) == "COMPLETED"

    # The same spec on the embedded default gives the same table.
    assert cli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    assert cli("run", "--once", who="ada").code == 0
    relative = "jobs/000001/outputs/residents_by_area/residents_by_area.csv"
    assert (slurm_home / relative).read_text() == (home / relative).read_text()

    # Every task ran sandboxed as the job user; its Slurm log is held for the checkers.
    assert table_job.handle.get("sandbox") is True
    assert "held for the output checkers" in scli("logs", "1", who="rita").out
    logs = scli("logs", "--held", "1", who="carl")
    assert "slurm-" in logs.out and "finished" in logs.out
    s = Session.open(slurm_home, "ada")
    wiped = [e for e in audit.events(s.conn, obj="job:1") if e.action == "job.scratch_wiped"]
    s.close()
    assert wiped and wiped[0].details == {"where": "compute node", "confirmed": True}

    # The python steps ran first in a sandbox of their own, so the engine recomputed the
    # table from their plan (plan mode), as on the embedded default.
    assert python_job.handle.get("split") is True
    report = json.loads((slurm_home / "jobs/000002/report/report.json").read_text())
    (table,) = [o for o in report["outputs"] if o["kind"] == "table"]
    assert "advisory" not in table
    assert table["provenance"].startswith("computed by tre's engine from the python step's plan")


def test_the_slurm_cluster_backend_runs_workers_as_slurm_jobs_each_in_its_sandbox(
    cluster_home, capsys
):
    """The engine runs here in the local sandbox, as the job user; each worker is a
    Slurm job of that user, started on its node in a sandbox of its own."""
    ccli = cli_for(cluster_home, capsys)
    assert ccli("submit", EXAMPLES / "gp_visits_model.yaml", who="rita").code == 0
    seen: dict[int, dict[str, str]] = {}
    s = Session.open(cluster_home, "ada")
    try:
        dispatcher = Dispatcher(s)
        deadline = time.monotonic() + 180
        while dispatcher.tick():
            assert time.monotonic() < deadline, "the slurm-cluster job never ended"
            seen |= _dask_workers()
            time.sleep(0.3)
    finally:
        s.close()
    finished = job(cluster_home, 1)
    assert finished.state is JobState.AWAITING_REVIEW, finished.reason
    assert finished.backend == "slurm-cluster"
    user = finished.handle["slurm_user"]
    assert user.startswith("tre-job-")
    assert seen, "no worker ran as a Slurm job"
    host_mounts = os.readlink("/proc/self/ns/mnt")
    for pid, worker in seen.items():
        assert worker["user"] == user, f"worker {pid} ran as {worker['user']}, not {user}"
        assert worker["mnt"] != host_mounts, f"worker {pid} was not in a sandbox"
        assert worker["sees_home"] == "no", f"worker {pid} could see the TRE home"
    logs = list((cluster_home / "jobs" / "000001" / "slurm").glob("slurm-*.out"))
    assert logs, "the worker jobs wrote no log in the job's Slurm folder"


def _dask_workers() -> dict[int, dict[str, str]]:
    """Every dask worker process on this machine (the test cluster's nodes share its
    kernel): its user, its mount namespace, and whether the TRE homes' folder shows."""
    import pwd

    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if args[1:3] != [b"-m", b"distributed.cli.dask_worker"]:
                continue  # not the worker's own interpreter (its sandbox's bwrap, say)
            uid = (entry / "status").read_text().split("Uid:")[1].split()[0]
            root = entry / "root"
            found[int(entry.name)] = {
                "user": pwd.getpwuid(int(uid)).pw_name,
                "mnt": os.readlink(entry / "ns" / "mnt"),
                "sees_home": "yes"
                if (root / "tmp").is_dir()
                and any(p.name.startswith("tre-cluster-home-") for p in (root / "tmp").iterdir())
                else "no",
            }
        except (OSError, KeyError, IndexError):
            continue
    return found


def start_in_background(home: Path) -> subprocess.Popen[bytes]:
    return start_dispatcher(home, interval=0.3)


def running_on_slurm(home: Path, job_id: int) -> int:
    def slurm_id():
        current = job(home, job_id)
        sid = current.handle.get("slurm_job_id")
        return (
            sid
            if current.state is JobState.RUNNING and sid and slurm_state(sid) == "RUNNING"
            else None
        )

    return int(wait_for(slurm_id, timeout=90, what="the job to run on Slurm"))


def test_cancel_runs_scancel_and_the_job_ends_cancelled(scli, slurm_home, tmp_path):
    job_id = slow_job(tmp_path, scli, seconds=300)
    dispatcher = start_in_background(slurm_home)
    try:
        slurm_id = running_on_slurm(slurm_home, job_id)
        status = scli("status", str(job_id), who="rita")
        assert f"Slurm job {slurm_id}: Slurm state RUNNING" in status.out
        result = scli("cancel", str(job_id), who="rita")
        assert result.code == 0, result.err
        wait_for(
            lambda: slurm_state(slurm_id) == "CANCELLED", timeout=60, what="Slurm to cancel the job"
        )
    finally:
        os.killpg(dispatcher.pid, signal.SIGKILL)
        dispatcher.wait()
    assert job(slurm_home, job_id).state is JobState.CANCELLED


def test_a_restarted_dispatcher_finds_the_slurm_job_and_never_submits_it_twice(
    scli, slurm_home, tmp_path
):
    job_id = slow_job(tmp_path, scli, seconds=8)
    dispatcher = start_in_background(slurm_home)
    try:
        slurm_id = running_on_slurm(slurm_home, job_id)
    finally:
        os.killpg(dispatcher.pid, signal.SIGKILL)
        dispatcher.wait()
    before = next_slurm_id()
    settle(slurm_home)
    finished = job(slurm_home, job_id)
    assert finished.state is JobState.AWAITING_REVIEW, finished.reason
    assert finished.handle["slurm_job_id"] == slurm_id
    assert next_slurm_id() == before  # nothing was submitted again


def computing(home: Path, job_id: int) -> bool:
    """The job's engine is up and its step's task has been handed to the workers."""
    folder = home / "jobs" / f"{job_id:06d}"
    # A sandboxed job writes its progress in its output folder while it runs; its
    # python steps in theirs (the handover folder), in their own sandbox, first.
    return any(
        p.exists() and "slow" in p.read_text()
        for p in (
            folder / "out" / "progress.json",
            folder / "handover" / "progress.json",
            folder / "progress.json",
        )
    )


def test_a_killed_worker_s_tasks_run_again_on_another_worker(scli, slurm_home, tmp_path):
    job_id = slow_job(tmp_path, scli, seconds=10, workers=2)
    dispatcher = start_in_background(slurm_home)
    try:
        slurm_id = running_on_slurm(slurm_home, job_id)
        wait_for(lambda: computing(slurm_home, job_id), timeout=60, what="the step to start")
        victims = wait_for(lambda: worker_pids(slurm_id), timeout=60, what="workers")
        os.kill(victims[0], signal.SIGKILL)
    finally:
        os.killpg(dispatcher.pid, signal.SIGKILL)
        dispatcher.wait()
    settle(slurm_home)
    finished = job(slurm_home, job_id)
    assert finished.state is JobState.AWAITING_REVIEW, finished.reason


@pytest.mark.timeout(360)  # waits longer than the suite's 120 s
def test_when_every_worker_dies_the_job_fails_with_a_reason(scli, slurm_home, tmp_path):
    job_id = slow_job(tmp_path, scli, seconds=120)
    dispatcher = start_in_background(slurm_home)
    try:
        slurm_id = running_on_slurm(slurm_home, job_id)
        wait_for(lambda: computing(slurm_home, job_id), timeout=60, what="the step to start")
        victims = wait_for(lambda: worker_pids(slurm_id), timeout=60, what="workers")
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.killpg(dispatcher.pid, signal.SIGKILL)
        dispatcher.wait()
    settle(slurm_home, timeout=240)
    failed = job(slurm_home, job_id)
    assert failed.state is JobState.FAILED
    assert "worker" in failed.reason.lower()
    assert not (slurm_home / "jobs" / f"{job_id:06d}" / "outputs").exists()


def worker_pids(slurm_id: int) -> list[int]:
    """The worker tasks (SLURM_PROCID >= 2) of one slurm-runner allocation."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(
                item.split("=", 1)
                for item in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in item
            )
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            env.get("SLURM_JOB_ID") == str(slurm_id)
            and b"slurm.launch" in cmd
            and int(env.get("SLURM_PROCID", "0")) >= 2
        ):
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(360)  # waits longer than the suite's 120 s
def test_walltime_reached_on_slurm_fails_the_job_saying_so(scli, slurm_home, tmp_path):
    job_id = slow_job(tmp_path, scli, seconds=600, walltime="1m")
    settle(slurm_home, timeout=240)
    failed = job(slurm_home, job_id)
    assert failed.state is JobState.FAILED
    assert "walltime was reached" in failed.reason
    assert not (slurm_home / "jobs" / f"{job_id:06d}" / "outputs").exists()


def test_over_quota_or_no_longer_approved_never_reaches_sbatch(scli, slurm_home, tmp_path):
    before = next_slurm_id()
    spec = write_spec(
        tmp_path,
        {
            "project": "lcr-health-fire",
            "title": "Too big",
            "datasets": {"residents": ["local_authority"]},
            "resources": {"workers": 16, "memory": "64GiB"},
            "steps": [
                {"kind": "table", "name": "t", "dataset": "residents", "rows": ["local_authority"]}
            ],
        },
    )
    refused = scli("submit", spec, who="rita")
    assert refused.code == 4 and "quota" in refused.err
    assert scli("submit", EXAMPLES / "gp_visits_model.yaml", who="rita").code == 0
    assert scli("project", "suspend", "lcr-health-fire", "--reason", "audit", who="bob").code == 0
    settle(slurm_home)
    stopped = job(slurm_home, 2)
    assert stopped.state is JobState.FAILED and "no longer allowed" in stopped.reason
    assert stopped.attempts == 0 and not stopped.handle
    assert next_slurm_id() == before


def test_cluster_check_reports_what_works_and_what_does_not(scli, tmp_path):
    good = scli("cluster", "check", "--profile", "local-test")
    assert good.code == 0, good.out
    assert "python on nodes" in good.out and "can run tre jobs" in good.out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npartition: nosuch\n")
    result = scli("cluster", "check", "--profile", bad)
    assert result.code == 1
    assert "there is no partition 'nosuch'" in result.out
    assert "fix:" in result.out


def test_a_node_failure_is_retried_per_the_profile(scli, slurm_home, tmp_path):
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    job_id = slow_job(tmp_path, scli, seconds=6)
    dispatcher = start_in_background(slurm_home)
    try:
        first = running_on_slurm(slurm_home, job_id)
        subprocess.run(
            [
                "scontrol",
                "update",
                f"nodename={node}",
                "state=down",
                "reason=tre-test-node-failure",
            ],
            check=True,
        )
        wait_for(lambda: slurm_state(first) == "NODE_FAIL", timeout=60, what="NODE_FAIL")
    finally:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False)
        os.killpg(dispatcher.pid, signal.SIGKILL)
        dispatcher.wait()
    settle(slurm_home)
    finished = job(slurm_home, job_id)
    assert finished.state is JobState.AWAITING_REVIEW, finished.reason
    assert finished.attempts == 2
    assert finished.handle["slurm_job_id"] != first
    s = Session.open(slurm_home, "ada")
    requeued = [e for e in audit.events(s.conn, obj=f"job:{job_id}") if e.action == "job.queued"]
    s.close()
    assert any(
        "NODE_FAIL" in e.details["reason"] and "trying again" in e.details["reason"]
        for e in requeued
    )


def test_hsm_backed_keys_work_on_slurm(tmp_path, sources, capsys):
    # The job's workers run in a Slurm allocation and unwrap through the HSM there (the
    # test cluster's node is this machine, so it sees the same SoftHSM token; a site's
    # nodes need the PKCS#11 module and a network HSM, see docs/keys.md).
    from tests.e2e.test_keys import hsm_home

    home, cli = hsm_home(
        tmp_path, sources, capsys, "--backend", "slurm-runner", "--slurm-profile", "local-test"
    )
    assert cli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    settle(home)
    finished = job(home, 1)
    assert finished.state is JobState.AWAITING_REVIEW, finished.reason
    assert slurm_state(finished.handle["slurm_job_id"]) == "COMPLETED"
    table = home / "jobs/000001/outputs/residents_by_area/residents_by_area.csv"
    assert table.read_text().startswith("local_authority,")


def test_a_slurm_cluster_job_whose_workers_slurm_refuses_fails_in_seconds(cluster_home, capsys):
    """sbatch refusing the worker jobs (here: a partition the cluster does not have)
    fails the job at once with Slurm's words, not after the start-up timeout."""
    profile = cluster_home / "cluster-profile.yaml"
    text = profile.read_text().replace("partition: debug", "partition: nosuch")
    profile.write_text(text.replace("partitions: [debug, long]", "partitions: [nosuch]"))
    ccli = cli_for(cluster_home, capsys)
    assert ccli("submit", EXAMPLES / "gp_visits_model.yaml", who="rita").code == 0
    started = time.monotonic()
    settle(cluster_home, timeout=60)
    failed = job(cluster_home, 1)
    assert failed.state is JobState.FAILED
    assert "Slurm refused the job's worker jobs" in failed.reason, failed.reason
    assert "partition" in failed.reason, failed.reason
    assert time.monotonic() - started < 40
