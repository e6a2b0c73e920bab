"""The preflight's reading of a probe, and of the runtime's modes, without a sandbox
(tests/e2e/test_start_failures.py runs it for real)."""

from __future__ import annotations

import json
from pathlib import Path

from slurm import preflight, sandbox

JOB_UID, JOB_GID = 54321, 54321  # no file here belongs to them


def _plan(tmp_path: Path, **changes) -> sandbox.Plan:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    python = venv / "bin" / "python"
    if not python.exists():
        python.write_text("")
        python.chmod(0o755)
    values = {
        "job_dir": tmp_path / "job",
        "out_dir": tmp_path / "job" / "out",
        "data": (),
        "key_socket": Path("/run/tre/abc/keys.sock"),
        "uid": JOB_UID,
        "gid": JOB_GID,
        "memory_bytes": 1 << 30,
        "cpu_seconds": 60,
        "python": str(python),
        "runtime": (venv,),
    }
    values.update(changes)
    return sandbox.Plan(**values)


def _probe(**found) -> str:
    said = {"python": "3.11.7", "uid": JOB_UID, "imports": "ok", "keys": "ok", "out": "ok"}
    return preflight.MARK + json.dumps({**said, **found}) + "\n"


def test_a_probe_that_found_everything_is_no_finding(tmp_path):
    assert preflight.diagnose(_plan(tmp_path), 0, _probe(), "") == []


def test_each_failing_part_is_named_with_its_fix(tmp_path):
    plan = _plan(tmp_path)
    stdout = _probe(
        imports="not installed: polars",
        keys="KeyServiceDown: no answer",
        out="No space left on device (/job/out)",
    )
    findings = {f.part: f for f in preflight.diagnose(plan, 0, stdout, "")}
    assert set(findings) == {"imports", "key service", "output folder"}
    assert "not installed: polars" in findings["imports"].problem
    assert "/run/tre/abc/keys.sock" in findings["key service"].problem
    assert "tre keys status" in findings["key service"].fix
    assert "No space left" in findings["output folder"].problem


def test_a_probe_run_as_root_is_refused(tmp_path):
    findings = preflight.diagnose(_plan(tmp_path), 0, _probe(uid=0), "")
    assert [f.part for f in findings] == ["job user"]


def test_a_runtime_folder_the_job_user_cannot_enter_is_named_before_its_symptoms(tmp_path):
    plan = _plan(tmp_path)
    (tmp_path / "venv").chmod(0o700)
    findings = preflight.diagnose(plan, 1, "", "ModuleNotFoundError: No module named 'tre'")
    assert len(findings) == 1
    problem = findings[0].problem
    assert problem.startswith(f"the sandbox cannot see {plan.python}: ")
    assert f"cannot enter {tmp_path / 'venv'} (mode 0700" in problem
    assert "chmod -R o+rX" in findings[0].fix


def test_folders_above_the_bound_runtime_do_not_count(tmp_path):
    # The sandbox makes them 0755: a checkout in root's 0700 home folder still works.
    tmp_path.chmod(0o700)
    assert preflight.hidden_runtime(_plan(tmp_path)) == []


def test_a_python_that_links_outside_the_runtime_is_not_in_the_sandbox(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "python3").write_text("")
    plan = _plan(tmp_path)
    Path(plan.python).unlink()
    Path(plan.python).symlink_to(elsewhere / "python3")
    assert preflight.hidden_runtime(plan) == [
        f"{elsewhere / 'python3'} is outside the folders the sandbox shows"
    ]


def test_exit_127_names_the_program_from_what_the_sandbox_said(tmp_path):
    plan = _plan(tmp_path)
    said = f"setpriv: failed to execute {plan.python}: No such file or directory\n"
    (finding,) = preflight.diagnose(plan, 127, "", said)
    assert finding.part == "python"
    assert f"cannot run {plan.python}: setpriv: failed to execute" in finding.problem


def test_a_sandbox_that_did_not_start_says_its_last_words(tmp_path):
    said = "bwrap: No permissions to creating new namespace\n"
    (finding,) = preflight.diagnose(_plan(tmp_path), 1, "", said)
    assert finding.part == "sandbox"
    assert "exit status 1" in finding.problem and "No permissions" in finding.problem
