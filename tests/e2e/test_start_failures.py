"""A job that cannot start fails in seconds and says why (issue 22).

The fault is a real one: a venv that a umask-077 install leaves 0700, so tre (root)
runs from it but the job user cannot enter it. Everything else is real: bubblewrap,
the job user, the key service, the dispatcher."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slurm import sandbox
from tests.conftest import EXAMPLES, ROOT
from tre.models import JobState
from tre.outcomes import Outcome
from tre.runtime import runtime_paths
from tre.service.preflight import check_can_start
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow


def unreadable_runtime(folder: Path) -> Path:
    """A venv the job user cannot enter (mode 0700), in a folder with a space in its name,
    over this test run's own site-packages; its python, for tre to run from."""
    venv = folder / "runtime 077" / "venv"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / version).mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text((Path(sys.prefix) / "pyvenv.cfg").read_text())
    os.symlink(os.path.realpath(sys.executable), venv / "bin" / "python")
    os.symlink(
        Path(sys.prefix) / "lib" / version / "site-packages",
        venv / "lib" / version / "site-packages",
    )
    venv.chmod(0o700)
    return venv / "bin" / "python"


def submit_example(cli) -> int:
    result = cli("submit", EXAMPLES / "health_by_area.yaml", who="rita")
    assert result.code == 0, result.err
    return int(result.out.split()[1])


def state_of(home: Path, job_id: int):
    s = Session.open(home, "ada")
    try:
        return repo.get_job(s.conn, job_id)
    finally:
        s.close()


def test_the_preflight_passes_where_jobs_can_start(home):
    s = Session.open(home, "ada")
    try:
        outcome = check_can_start(s)
    finally:
        s.close()
    assert outcome is not None and outcome.ok
    assert not list(home.glob("preflight-*")), "the throwaway job folder is removed"


def test_tre_run_refuses_to_start_naming_the_folder_the_job_user_cannot_enter(home, cli, tmp_path):
    job_id = submit_example(cli)
    python = unreadable_runtime(tmp_path)
    done = subprocess.run(
        [str(python), "-m", "tre.cli.main", "--home", str(home), "--as", "ada", "run", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 6, done.stderr
    said = " ".join(done.stderr.split())
    assert f"the sandbox cannot see {python}" in said
    assert f"cannot enter {python.parent.parent} (mode 0700" in said
    assert "chmod -R o+rX" in said and "When jobs do not start" in said
    assert state_of(home, job_id).state is JobState.QUEUED  # nothing taken, nothing lost


DISPATCH = textwrap.dedent("""
    import logging, sys
    from pathlib import Path
    from tre.service.dispatcher import Dispatcher
    from tre.service.session import Session

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    session = Session.open(Path(sys.argv[1]), "ada")
    Dispatcher(session).run(once=True, interval=0.2)
""")


def test_a_job_that_dies_before_it_starts_fails_at_once_and_says_so(home, cli, tmp_path):
    # A dispatcher that was running before the runtime broke (so no preflight stops it).
    job_id = submit_example(cli)
    python = unreadable_runtime(tmp_path)
    done = subprocess.run(
        [str(python), "-c", DISPATCH, str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    job = state_of(home, job_id)
    assert job.state is JobState.FAILED
    assert job.reason.startswith("the job could not start: the job process exited with status")
    assert job.outcome is Outcome.NEVER_STARTED
    assert "the platform's fault" in job.reason and "When jobs do not start" in job.reason
    # The admin's log has what the process said; the researcher's reason does not.
    assert f"job {job_id} could not start" in done.stderr
    assert "No module named" in done.stderr and "No module named" not in job.reason


def test_a_runtime_under_tmp_is_shown_in_the_sandbox_read_only(tmp_path):
    # The sandbox's own /tmp is a private tmpfs: a checkout under /tmp must still show.
    assert str(tmp_path).startswith("/tmp/")
    package = tmp_path / "clone dir" / "pkgs"
    package.mkdir(parents=True)
    (package / "hello_tre.py").write_text("WORD = 'visible'\n")
    for folder in (package, package.parent):
        folder.chmod(0o755)
    job = tmp_path / "job"
    (job / "out").mkdir(parents=True)
    (job / "input.json").write_text("{}")
    user = sandbox.job_user()
    runtime, hide = runtime_paths()
    probe = (
        f"import sys; sys.path.insert(0, {str(package)!r}); import hello_tre; "
        f"print(hello_tre.WORD); open({str(package / 'x')!r}, 'w')"
    )
    plan = sandbox.Plan(
        job_dir=job,
        out_dir=job / "out",
        data=(),
        key_socket=Path("/dev/null"),
        uid=user.pw_uid,
        gid=user.pw_gid,
        memory_bytes=1 << 30,
        cpu_seconds=60,
        runtime=(*runtime, package),
        hide=hide,
        program=(sys.executable, "-c", probe),
    )
    done = subprocess.run(sandbox.command(plan), capture_output=True, text=True, timeout=60)
    assert done.stdout == "visible\n"
    assert "Read-only file system" in done.stderr or "Permission denied" in done.stderr


def test_a_test_run_on_a_host_where_jobs_cannot_start_ends_at_once(tmp_path):
    python = unreadable_runtime(tmp_path)
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/tre/test_units.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "TRE_REQUIRE_ALL": "1"},
    )
    said = " ".join(done.stdout.split())
    assert done.returncode == 3, said
    assert "jobs cannot start on this machine" in said
    assert f"the sandbox cannot see {python}" in said
    assert " passed" not in said  # no test ran


def test_tre_cluster_check_runs_the_preflight_for_the_local_backend(cli):
    result = cli("cluster", "check")
    assert result.code == 0, result.out
    assert "✓ sandbox preflight: a job starts as tre-job" in result.out
