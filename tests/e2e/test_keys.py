"""Keys, grants and safe reads with real jobs: real job processes, real Dask workers,
real Parquet encryption, and a real (SoftHSM) HSM.

- a job reads what it was granted and is refused the rest, clearly;
- a running job fails at its next read when its project is suspended or expires;
- jobs still run after every key is rotated and the old versions destroyed;
- HSM-backed keys, from `tre keys configure` to a job's outputs;
- job inputs naming ungranted columns (filters, joins, group keys) end cleanly: no
  crash, no hang (each run in its own process, with a timeout).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import yaml

from jobs.job_input import JobInput, source_to_dict, write_input
from jobs.spec import JobSpec
from tests.conftest import EXAMPLES, PROJECT, cli_for, write_spec
from tests.tre.keys.softhsm import start_token
from tre import audit
from tre.demo.synth import descriptor_path
from tre.models import Job, JobState, ProjectState
from tre.service import grants, projects
from tre.service import jobs as job_service
from tre.service import keys as key_service
from tre.service.dispatcher import Dispatcher
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow


def _job(home: Path, job_id: int) -> Job:
    s = Session.open(home, "ada")
    try:
        return repo.get_job(s.conn, job_id)
    finally:
        s.close()


def _submit(cli, spec: Path, who: str = "rita") -> int:
    result = cli("submit", spec, who=who)
    assert result.code == 0, result.err
    return int(result.out.split()[1])


def _wait(predicate, timeout: float = 90.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


WIDEN = textwrap.dedent("""
    import dataclasses
    from tre.secured.reader import read_table

    def widen(ctx):
        ctx.table("by_area", ctx.dataset("residents"), rows=["local_authority"])
        # Researcher code editing its own source to read a column it was not granted:
        source = ctx._sources["residents"]
        wider = dataclasses.replace(source, granted=(*source.granted, "ward"))
        read_table(wider, ["ward"])
""")


def test_a_job_reads_its_granted_columns_and_is_refused_the_others(cli, home, tmp_path):
    (tmp_path / "widen.py").write_text(WIDEN)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Reads what it may, then tries more",
            "datasets": {"residents": ["local_authority"]},
            "steps": [{"kind": "python", "name": "widen", "function": "widen.py:widen"}],
        },
    )
    job_id = _submit(cli, spec)
    assert cli("run", "--once", who="ada").code == 0
    failed = _job(home, job_id)
    assert failed.state is JobState.FAILED
    # The researcher sees the exception's type and where in their code (its message is
    # held for the checkers, with the log: researcher code can put data in it) ...
    assert "KeyNotGranted at line " in failed.reason and " of widen.py" in failed.reason
    assert "column" not in failed.reason
    # ... the checkers see all of it, and the key service's refusal is audited.
    held = cli("logs", "--held", job_id, who="carl")
    assert held.code == 0, held.err
    assert f"the key grant of job {job_id} (project '{PROJECT}') does not cover" in held.out
    assert "column 'ward' of dataset 'residents'" in held.out
    assert cli("logs", "--held", job_id, who="rita").code != 0  # not the author's to read
    audit = cli("audit", "log", "--last", "200", who="ada")
    assert "keys.refused" in audit.out, audit.out[-2000:]
    # The same columns, read the ordinary way, work.
    ok = _submit(cli, EXAMPLES / "health_by_area.yaml")
    assert cli("run", "--once", who="ada").code == 0
    assert _job(home, ok).state is JobState.AWAITING_REVIEW
    listed = cli("keys", "grants", "--project", PROJECT, who="ada")
    assert listed.code == 0 and f"job {job_id}" in listed.out and "revoked" in listed.out


SETTINGS = textwrap.dedent("""
    import json
    import os
    import dask

    def settings(ctx):
        ctx.table("by_area", ctx.dataset("residents"), rows=["local_authority"])
        worker = {
            "spill": dask.config.get("distributed.worker.memory.spill"),
            "target": dask.config.get("distributed.worker.memory.target"),
            "local_directory": os.getcwd(),
        }
        ctx.file("worker", "worker.json", json.dumps(worker))
""")


def test_workers_that_hold_decrypted_data_never_spill_it_to_disk(cli, home, tmp_path):
    (tmp_path / "settings.py").write_text(SETTINGS)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Where could decrypted data go?",
            "datasets": {"residents": ["local_authority"]},
            "steps": [{"kind": "python", "name": "settings", "function": "settings.py:settings"}],
        },
    )
    job_id = _submit(cli, spec)
    assert cli("run", "--once", who="ada").code == 0
    assert _job(home, job_id).state is JobState.AWAITING_REVIEW, _job(home, job_id).reason
    found = sorted((home / "jobs" / f"{job_id:06d}").rglob("worker.json"))
    worker = json.loads(found[0].read_text())  # the result and its release candidate
    assert worker["spill"] is False and worker["target"] is False
    assert not (home / "jobs" / f"{job_id:06d}" / "scratch").exists()  # wiped at the end


PAUSING = textwrap.dedent("""
    import os
    import time

    def pausing(ctx):
        ctx.dataset("residents").collect()
        open(MARKER, "w").write("read once")
        deadline = time.monotonic() + 120
        while not os.path.exists(GO) and time.monotonic() < deadline:
            time.sleep(0.1)
        ctx.table("by_area", ctx.dataset("residents"), rows=["local_authority"])
""")


@contextmanager
def paused_job(cli, home: Path, tmp_path: Path) -> Iterator[tuple[int, Session]]:
    """A job that has read once and now waits: the block runs while it waits (with the
    job's id and an admin session); then the job reads again and the dispatcher runs
    until the job is neither running nor being checked."""
    # The job sees only its own folders: it talks to the test through its output folder
    # (its working directory: /job/out in the sandbox; outside, job_dir/handover, the
    # python steps' own folder, as they run in a sandbox of their own before the engine).
    code = PAUSING.replace("MARKER", repr("marker")).replace("GO", repr("go"))
    (tmp_path / "pausing.py").write_text(code)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Reads, waits, reads again",
            "datasets": {"residents": ["local_authority"]},
            "steps": [{"kind": "python", "name": "pausing", "function": "pausing.py:pausing"}],
        },
    )
    job_id = _submit(cli, spec)
    out = home / "jobs" / f"{job_id:06d}" / "handover"
    marker, go = out / "marker", out / "go"
    session = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(session)
        dispatcher.tick()
        assert _job(home, job_id).state is JobState.RUNNING
        _wait(marker.exists, what="the job's first read")
        yield job_id, session
        go.write_text("go")
        # Until the job has ended and, if it has results, been checked (in its own process).
        _wait(
            lambda: (
                (dispatcher.tick() or True)
                and _job(home, job_id).state not in (JobState.RUNNING, JobState.CHECKING)
            )
        )
    finally:
        dispatcher.checks.stop_all()
        session.close()


@pytest.mark.parametrize("ending", ["suspended", "expired"])
def test_a_running_job_fails_at_its_next_read_when_its_approval_ends(
    ending: str, cli, home, tmp_path
):
    with paused_job(cli, home, tmp_path) as (job_id, session):
        if ending == "suspended":
            projects.change_project_state(
                session, PROJECT, ProjectState.SUSPENDED, "consent withdrawn"
            )
        else:
            session.today = lambda: date(2028, 1, 1)  # the day after the project's expiry
    failed = _job(home, job_id)
    assert failed.state is JobState.FAILED
    assert f"the key grant of job {job_id} (project '{PROJECT}') was revoked" in failed.reason
    if ending == "suspended":
        assert f"project '{PROJECT}' was suspended by ada: consent withdrawn" in failed.reason
    else:
        assert f"project '{PROJECT}' expired on 2027-12-31" in failed.reason


def test_the_signing_key_rotates_under_a_running_job(cli, home, tmp_path):
    # A job started before the rotation holds a grant signed with the old version: it
    # reads on and finishes, and that version cannot be destroyed while the job runs.
    with paused_job(cli, home, tmp_path) as (job_id, _):
        rotated = cli("keys", "rotate", "--key", "tre.grant-signing", who="ada")
        assert rotated.code == 0, rotated.err
        assert "tre.grant-signing: v1 -> v2" in rotated.out
        refused = cli("keys", "destroy", "tre.grant-signing", "--version", "1", "--yes", who="ada")
        assert refused.code != 0
        assert "signed 1 grant(s) that are still active" in refused.err
        listed = cli("keys", "list", who="ada")
        assert "v1: 1 active grant(s)" in listed.out
    finished = _job(home, job_id)
    assert finished.state is JobState.AWAITING_REVIEW, finished.reason
    destroyed = cli("keys", "destroy", "tre.grant-signing", "--version", "1", "--yes", who="ada")
    assert destroyed.code == 0, destroyed.err
    assert _run_health_job(cli, home)  # new grants are signed with v2


def _run_health_job(cli, home: Path) -> list[dict]:
    job_id = _submit(cli, EXAMPLES / "health_by_area.yaml")
    assert cli("run", "--once", who="ada").code == 0
    done = _job(home, job_id)
    assert done.state is JobState.AWAITING_REVIEW, done.reason
    report = json.loads((home / "jobs" / f"{job_id:06d}" / "report" / "report.json").read_text())
    return [output["name"] for output in report["outputs"]]


def test_jobs_run_after_rotation_and_with_old_versions_destroyed(cli, home):
    before = _run_health_job(cli, home)
    rotated = cli("keys", "rotate", "--all", who="ada")
    assert rotated.code == 0, rotated.err
    assert "v1 -> v2" in rotated.out and "re-wrapped the key material of 3 file(s)" in rotated.out
    s = Session.open(home, "ada")
    key_ids = [k.key_id for k in key_service.list_keys(s)]
    s.close()
    for key_id in key_ids:
        destroyed = cli("keys", "destroy", key_id, "--version", "1", "--yes", who="ada")
        assert destroyed.code == 0, destroyed.err
    # The signing key's v1 too; the audit chain's key is not rotated (every event's hash
    # is checked with it).
    left = [p.name for p in (home / "keys").glob("*.v1.key")]
    assert left == ["tre.audit-chain.v1.key"]
    assert _run_health_job(cli, home) == before
    listed = cli("keys", "list", who="ada")
    assert "residents: column age_band" in listed.out and "v2: 1 file(s)" in listed.out
    assert "tre.grant-signing" in listed.out
    assert cli("dataset", "verify", "residents", who="ada").code == 0  # data untouched


def hsm_home(tmp_path: Path, sources, capsys, *init: str):
    """A demo home whose master keys are on a fresh SoftHSM token: people registered,
    the three datasets ingested, the project approved. Returns (home, cli)."""
    token = start_token(tmp_path / "hsm")
    home = tmp_path / "hsm-home"
    cli = cli_for(home, capsys)
    assert cli("init", "--demo", "--admin", "ada", *init).code == 0
    configured = cli(
        "keys", "configure", "--kms", "pkcs11", "--module", token.module,
        "--token", token.label, "--pin-file", str(token.pin_file), who="ada",
    )  # fmt: skip
    assert configured.code == 0, configured.err
    assert f"PKCS#11 token '{token.label}'" in configured.out
    for name, roles in (("bob", "admin"), ("rita", "researcher"), ("sam", "researcher")):
        args = ["admin", "register", name, "--full-name", name.title(), "--role", roles]
        if roles == "researcher":
            args += ["--accredited-until", "2099-01-01"]
        assert cli(*args, who="ada").code == 0
    assert cli("admin", "confirm", "bob", who="ada").code == 0  # so bob may approve
    for name in ("residents", "fire_incidents", "early_help"):
        ingested = cli(
            "dataset", "ingest", name, sources[name], "--describe", descriptor_path(name),
            "--rows-per-group", "2000", who="ada",
        )  # fmt: skip
        assert ingested.code == 0, ingested.err
    assert sorted(p.name for p in (home / "keys").iterdir()) == []  # nothing on disk
    assert cli("project", "request", EXAMPLES / "project.yaml", who="rita").code == 0
    assert cli("project", "approve", PROJECT, who="bob").code == 0
    return home, cli


def test_hsm_backed_keys_from_configuration_to_outputs(tmp_path, sources, capsys):
    home, cli = hsm_home(tmp_path, sources, capsys)
    job_id = _submit(cli, EXAMPLES / "health_by_area.yaml")
    assert cli("run", "--once", who="ada").code == 0
    assert _job(home, job_id).state is JobState.AWAITING_REVIEW, _job(home, job_id).reason
    rotated = cli("keys", "rotate", "--dataset", "residents", who="ada")
    assert rotated.code == 0, rotated.err
    listed = cli("keys", "list", who="ada")
    assert "in the pkcs11 key store" in listed.out
    footer = cli("keys", "destroy", "residents.footer", "--version", "1", "--yes", who="ada")
    assert footer.code == 0, footer.err
    again = _submit(cli, EXAMPLES / "health_by_area.yaml")
    assert cli("run", "--once", who="ada").code == 0
    assert _job(home, again).state is JobState.AWAITING_REVIEW, _job(home, again).reason


# --- job inputs that name ungranted columns ------------------------------------------

DECLARED = {"residents": ["local_authority", "age_band"], "fire_incidents": ["resident_id"]}


def _step(kind: str) -> dict:
    step: dict = {"kind": "table", "name": "t", "dataset": "residents", "rows": ["age_band"]}
    if kind == "filter":
        step["filter"] = "ward == 'Halton Castle'"
    elif kind == "join":
        step["link"] = {"dataset": "fire_incidents", "on": "resident_id", "columns": []}
    elif kind == "group":
        step["rows"] = ["ward"]
    return step


@pytest.mark.parametrize("kind", ["filter", "join", "group"])
@pytest.mark.parametrize("widened", [False, True], ids=["as-granted", "grant-list-edited"])
@pytest.mark.timeout(240)  # waits longer than the suite's 120 s
def test_job_inputs_naming_ungranted_columns_fail_cleanly(kind, widened, session_as, tmp_path):
    """The spec a job process receives is tampered with after the submission checks: it
    names `ward` or `resident_id` of residents, which the grant does not cover."""
    granted_spec = JobSpec.model_validate(
        {"project": PROJECT, "title": "t", "datasets": DECLARED, "steps": [_step("none")]}
    )
    job = job_service.submit_job(session_as("rita"), granted_spec)
    sources = grants.grant_job(session_as("ada"), job, granted_spec, queues=False)
    extra = {"filter": "ward", "join": "resident_id", "group": "ward"}[kind]
    tampered = JobSpec.model_validate(
        {
            "project": PROJECT,
            "title": "t",
            "datasets": {**DECLARED, "residents": [*DECLARED["residents"], extra]},
            "steps": [_step(kind)],
        }
    )
    if widened:
        r = sources["residents"]
        sources["residents"] = type(r)(**{**r.__dict__, "granted": (*r.granted, extra)})
    folder = tmp_path / "job"
    folder.mkdir(mode=0o700)
    write_input(
        folder,
        JobInput(
            job_id=job.id,
            spec=tampered,
            sources={n: source_to_dict(s) for n, s in sources.items()},
        ),
    )
    done = subprocess.run(
        [sys.executable, "-m", "slurm.launch", str(folder)],
        capture_output=True,
        text=True,
        timeout=180,  # a hang fails the test here
        check=False,
    )
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    reason = json.loads((folder / "error.json").read_text())["reason"]
    if widened:
        assert f"column '{extra}' of dataset 'residents'" in reason
        assert "does not cover" in reason
    else:
        assert f"column '{extra}' is not approved for this project" in reason
    assert not (folder / "result").exists()


def test_the_grant_never_reaches_logs_or_the_audit_log(cli, home):
    job_id = _submit(cli, EXAMPLES / "health_by_area.yaml")
    assert cli("run", "--once", who="ada").code == 0
    folder = home / "jobs" / f"{job_id:06d}"
    token = json.loads((folder / "input.json").read_text())["sources"]["residents"]["token"]
    assert token.startswith("tre-grant.1.")
    # The TRE's file: its job's slot's group read it while it ran; once it ended, no job
    # user can (the next job of the same slot included), and no one may write it.
    info = (folder / "input.json").stat()
    assert info.st_mode & 0o777 == 0o400
    assert (info.st_uid, info.st_gid) == (0, 0)
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "input.json":
            assert token.encode() not in path.read_bytes(), path
    dump = yaml.safe_dump([e.details for e in _events(home)])
    assert token not in dump


def _events(home: Path) -> list[audit.AuditEvent]:
    s = Session.open(home, "ada")
    try:
        return audit.events(s.conn)
    finally:
        s.close()
