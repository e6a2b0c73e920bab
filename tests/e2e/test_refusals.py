"""Every refusal through the real CLI: a clear message naming the bad value, the reason and
the fix, a non-zero exit code, never a traceback, and nothing changed that should not be.

Each test drives `tre` in-process on a fresh copy of the demo home (see conftest.py).
The two review cases need a job that has really run; they share one home, built once per
module with a real `tre run --once`, and are marked slow.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import yaml

from jobs.spec import load_spec
from tests.conftest import EXAMPLES, PROJECT, Result, write_spec
from tre.cli.main import main as tre_main
from tre.errors import PermissionDenied
from tre.service import jobs, projects
from tre.service.session import Session
from tre.store import repo

# A job that passes every check of the demo project; tests change one thing in it.
GOOD_SPEC: dict = {
    "project": PROJECT,
    "title": "Residents by area",
    "datasets": {"residents": ["local_authority", "age_band"]},
    "resources": {"workers": 1, "walltime": "10m"},
    "steps": [
        {
            "kind": "table",
            "name": "residents_by_area",
            "dataset": "residents",
            "rows": ["local_authority"],
            "columns": ["age_band"],
        }
    ],
}

# A person who is both researcher and checker, with a project of their own.
RC_PROJECT = {
    "name": "rc-study",
    "title": "Residents by area, for the review tests",
    "purpose": "Check that a checker cannot review a job they submitted.",
    "lead": "rc",
    "expires": "2099-12-31",
    "quota": {"workers": 2, "cores": 1, "memory": "2GiB", "walltime": "30m"},
    "datasets": [{"dataset": "residents", "columns": ["local_authority", "age_band"]}],
}
RC_SPEC = {**GOOD_SPEC, "project": "rc-study", "title": "Residents by area (rc)"}


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    # TRE_DEBUG re-raises internal errors; a user never has it set.
    monkeypatch.delenv("TRE_DEBUG", raising=False)


def spec_with(**changes: object) -> dict:
    """A deep copy of GOOD_SPEC with top-level fields replaced."""
    spec = yaml.safe_load(yaml.safe_dump(GOOD_SPEC))
    spec.update(changes)
    return spec


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.out
    assert "Traceback" not in result.err
    assert "internal error" not in result.err


def fix_line(result: Result) -> str:
    """The `fix (...)` line of an error message; fails if there is none."""
    lines = [line for line in result.err.splitlines() if line.startswith("fix (")]
    assert lines, f"no 'fix (...)' line in:\n{result.err}"
    return lines[0]


def job_states(home: Path) -> dict[int, str]:
    """Every job in the store, as id -> state."""
    s = Session.open(home, "ada")
    try:
        return {j.id: j.state.value for j in repo.list_jobs(s.conn)}
    finally:
        s.close()


def assert_nothing_queued(home: Path) -> None:
    """A refused submission queues nothing and writes no job folder."""
    assert "queued" not in job_states(home).values()
    assert not any((home / "jobs").iterdir())


def run_tre(capsys: pytest.CaptureFixture[str], *argv: object) -> Result:
    """`tre ARGV...` in-process with no --home supplied (for homes other than the fixture's)."""
    capsys.readouterr()
    code = tre_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the home, but the key service's own log, lock and pid: a command
    may start the key service, which is not a change to the home."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "keyservice"
    }


# -- the job spec itself ---------------------------------------------------------------


def test_malformed_yaml_names_the_line(cli, home, tmp_path):
    path = tmp_path / "job.yaml"
    text = yaml.safe_dump(GOOD_SPEC, sort_keys=False)
    # Indent `steps:` by one space: a bad indentation on line 5 of the file.
    lines = text.splitlines()
    steps = lines.index("steps:")
    lines[steps] = " steps:"
    path.write_text("\n".join(lines) + "\n")

    result = cli("submit", path, who="rita")

    assert result.code == 2
    assert str(path) in result.err and "not valid YAML" in result.err
    assert f"line {steps + 1}" in result.err
    assert "indentation" in fix_line(result)
    assert_no_traceback(result)
    assert job_states(home) == {}


@pytest.mark.parametrize(
    ("where", "named"),
    [("top", "colour"), ("step", "steps.0.colour")],
    ids=["top-level", "inside-a-step"],
)
def test_an_unknown_field_is_named(cli, home, tmp_path, where, named):
    spec = spec_with()
    if where == "top":
        spec["colour"] = "red"
    else:
        spec["steps"][0]["colour"] = "red"

    result = cli("submit", write_spec(tmp_path, spec), who="rita")

    assert result.code == 2
    assert f"{named}: unknown field" in result.err
    assert "tre schema job" in fix_line(result)
    assert_no_traceback(result)
    assert job_states(home) == {}


# -- datasets and columns -----------------------------------------------------------------


@pytest.mark.parametrize("alone", [False, True], ids=["beside-a-known-one", "alone"])
def test_an_unknown_dataset_is_named_with_the_catalog(cli, home, tmp_path, alone):
    spec = spec_with()
    if alone:
        spec["datasets"] = {"hospital_admissions": ["local_authority", "age_band"]}
        spec["steps"][0]["dataset"] = "hospital_admissions"
    else:
        spec["datasets"]["hospital_admissions"] = ["local_authority"]

    result = cli("submit", write_spec(tmp_path, spec), who="rita")

    assert result.code == 4
    assert "dataset 'hospital_admissions' is not in the catalog" in result.err
    assert "datasets: early_help, fire_incidents, residents" in result.err
    fix_line(result)
    assert_no_traceback(result)
    assert_nothing_queued(home)


def test_an_unknown_column_is_named_with_the_projects_columns(cli, home, tmp_path):
    spec = spec_with()
    spec["datasets"]["residents"].append("shoe_size")
    spec["steps"][0]["columns"] = ["shoe_size"]

    result = cli("submit", write_spec(tmp_path, spec), who="rita")

    assert result.code == 4
    assert "dataset 'residents' has no column(s) shoe_size" in result.err
    # Only what the project may use, not every column of the dataset (issue 27).
    assert "(project 'lcr-health-fire' is approved for: resident_id, local_authority" in result.err
    assert "ward" not in result.err and "has_depression" not in result.err  # not approved
    fix_line(result)
    assert_no_traceback(result)
    assert_nothing_queued(home)
    assert job_states(home) == {1: "refused"}


def test_a_column_not_approved_is_named_with_the_approved_ones(cli, home, tmp_path):
    spec = spec_with()
    spec["datasets"]["residents"].append("ward")
    spec["steps"][0]["rows"] = ["ward"]

    result = cli("submit", write_spec(tmp_path, spec), who="rita")

    assert result.code == 4
    assert "column(s) ward of 'residents' are not approved for project 'lcr-health-fire'" in (
        result.err
    )
    assert "approved: resident_id, local_authority, age_band, sex" in result.err
    fix_line(result)
    assert_no_traceback(result)
    assert_nothing_queued(home)


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_python_code_from_outside_the_spec_folder_is_refused(cli, home, tmp_path, where):
    # Importing the file runs it: on the TRE host that would be any .py file at all.
    outside = tmp_path / "outside.py"
    outside.write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\ndef main(ctx): pass\n")
    (tmp_path / "spec").mkdir()
    path_text = "../outside.py" if where == "parent" else str(outside)
    spec = spec_with(steps=[{"kind": "python", "name": "main", "function": f"{path_text}:main"}])

    result = cli("submit", write_spec(tmp_path / "spec", spec), who="rita")

    assert result.code == 2
    assert f"the python step's file {path_text!r} is not inside the job spec's folder" in (
        result.err
    )
    assert "put the file in the job spec's folder" in fix_line(result)
    assert_no_traceback(result)
    assert not (tmp_path / "imported").exists()
    assert job_states(home) == {}


@pytest.mark.parametrize(
    ("top", "said"),
    [
        ("import sys\nsys.exit(0)\n", "the module raised SystemExit(0) when it was imported"),
        ("import sys\nsys.exit(3)\n", "the module raised SystemExit(3) when it was imported"),
        ("raise KeyboardInterrupt\n", "the module raised KeyboardInterrupt when it was imported"),
    ],
)
def test_a_module_that_exits_at_import_is_refused_saying_what_it_did(
    cli, home, tmp_path, top, said
):
    (tmp_path / "exits.py").write_text(top + "def main(ctx):\n    pass\n")
    spec = spec_with(steps=[{"kind": "python", "name": "main", "function": "exits.py:main"}])

    result = cli("submit", write_spec(tmp_path, spec), who="rita")

    assert result.code == 2, (result.out, result.err)
    assert said in " ".join(result.err.split())
    assert "if __name__ ==" in fix_line(result)
    assert_no_traceback(result)
    assert job_states(home) == {}


def test_code_that_cannot_be_pickled_is_refused_naming_it(cli, home, tmp_path):
    (tmp_path / "locked.py").write_text(
        "import threading\nLOCK = threading.Lock()\n\n"
        "def main(ctx):\n    with LOCK:\n        pass\n"
    )
    spec = spec_with(steps=[{"kind": "python", "name": "main", "function": "locked.py:main"}])

    result = cli("submit", write_spec(tmp_path, spec), who="rita")

    assert result.code == 2, (result.out, result.err)
    said = " ".join(result.err.split())
    assert "the function 'main' cannot be sent to the job" in said
    assert "lock" in said
    assert "not at the top of the module" in fix_line(result)
    assert_no_traceback(result)
    assert job_states(home) == {}


# -- people and projects ------------------------------------------------------------------


def test_expired_accreditation_refuses_a_submission(cli, home):
    assert cli("admin", "update", "rita", "--accredited-until", "2020-01-01", who="ada").code == 0

    result = cli("submit", EXAMPLES / "gp_visits_model.yaml", who="rita")

    assert result.code == 4
    assert "rita's accreditation expired on 2020-01-01" in result.err
    fix_line(result)
    assert_no_traceback(result)
    assert_nothing_queued(home)


def test_an_expired_project_refuses_a_submission(cli, home, session_as):
    # Past the expiry date but before the dispatcher marked it: the date itself refuses.
    rita = session_as("rita")
    rita.today = lambda: date(2028, 1, 1)
    with pytest.raises(PermissionDenied) as refused:
        jobs.submit_job(rita, load_spec(EXAMPLES / "gp_visits_model.yaml"))
    assert refused.value.reasons == ["project 'lcr-health-fire' expired on 2027-12-31"]
    assert refused.value.fix

    # Once marked expired, the CLI refuses too.
    bob = session_as("bob")
    bob.today = lambda: date(2028, 1, 1)
    assert projects.expire_due_projects(bob) == [PROJECT]

    result = cli("submit", EXAMPLES / "gp_visits_model.yaml", who="rita")

    assert result.code == 4
    assert "project 'lcr-health-fire' is expired, not approved" in result.err
    fix_line(result)
    assert_no_traceback(result)
    assert_nothing_queued(home)


def test_a_researcher_not_a_member_is_refused(cli, home):
    result = cli("submit", EXAMPLES / "gp_visits_model.yaml", who="olga")

    assert result.code == 4
    assert "olga is not a member of project 'lcr-health-fire'" in result.err
    fix_line(result)
    assert_no_traceback(result)
    assert_nothing_queued(home)


@pytest.mark.parametrize(
    ("case", "remedy"),
    [("accreditation", "accreditation"), ("membership", "member"), ("expired", "renew")],
)
def test_a_submission_refusal_says_the_fix_for_its_reason(cli, home, session_as, case, remedy):
    who = "olga" if case == "membership" else "rita"
    if case == "accreditation":
        cli("admin", "update", "rita", "--accredited-until", "2020-01-01", who="ada")
    if case == "expired":
        bob = session_as("bob")
        bob.today = lambda: date(2028, 1, 1)
        projects.expire_due_projects(bob)

    result = cli("submit", EXAMPLES / "gp_visits_model.yaml", who=who)

    assert result.code == 4
    assert remedy in fix_line(result)


def test_resources_over_quota_name_each_excess(cli, home, tmp_path):
    spec = spec_with(resources={"workers": 8, "memory": "64GiB", "walltime": "5h"})

    result = cli("submit", write_spec(tmp_path, spec), who="rita")

    assert result.code == 4
    assert "workers 8 is over the project's quota of 2" in result.err
    assert "memory 64GiB is over the project's quota of 2GiB" in result.err
    assert "walltime 05:00:00 is over the project's quota of 00:30:00" in result.err
    fix_line(result)
    assert_no_traceback(result)
    assert_nothing_queued(home)


# -- review and release (jobs that really ran) --------------------------------------------


@pytest.fixture(scope="module")
def reviewable_template(
    tmp_path_factory: pytest.TempPathFactory, template_home: Path
) -> tuple[Path, dict[str, int]]:
    """The demo home plus rc (researcher and checker) with a project of their own, and
    two jobs awaiting review: rita's gp_visits_model and one of rc's."""
    folder = tmp_path_factory.mktemp("reviewable")
    root = folder / "home"
    shutil.copytree(template_home, root)

    def tre(*args: object, who: str) -> None:
        argv = ["--home", str(root), "--as", who, *(str(a) for a in args)]
        assert tre_main(argv) == 0, argv

    tre(
        "admin",
        "register",
        "rc",
        "--full-name",
        "RC",
        "--role",
        "researcher",
        "--role",
        "checker",
        "--accredited-until",
        "2099-01-01",
        who="ada",
    )
    (folder / "rc-study.yaml").write_text(yaml.safe_dump(RC_PROJECT))
    tre("project", "request", folder / "rc-study.yaml", who="rc")
    tre("project", "approve", "rc-study", who="bob")
    tre("submit", EXAMPLES / "gp_visits_model.yaml", who="rita")
    tre("submit", write_spec(folder, RC_SPEC), who="rc")
    tre("run", "--once", who="ada")

    s = Session.open(root, "ada")
    try:
        found = repo.list_jobs(s.conn)
    finally:
        s.close()
    assert [j.state.value for j in found] == ["awaiting_review"] * 2, [j.reason for j in found]
    return root, {j.submitter: j.id for j in found}


@pytest.fixture
def reviewable(home: Path, reviewable_template: tuple[Path, dict[str, int]]) -> dict[str, int]:
    """Make the test's home a copy of the reviewable template; returns job ids by author."""
    template, ids = reviewable_template
    shutil.rmtree(home)
    shutil.copytree(template, home)
    return ids


def reviews_of(home: Path, job_id: int) -> list[str]:
    s = Session.open(home, "ada")
    try:
        return [f"{r.checker}:{r.output}" for r in repo.list_reviews(s.conn, job_id)]
    finally:
        s.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [("approve", "-m", "ok"), ("release",)], ids=["approve", "release"]
)
def test_a_checker_cannot_review_their_own_job(cli, home, reviewable, command):
    job = reviewable["rc"]

    result = cli("review", command[0], job, *command[1:], who="rc")

    assert result.code == 4
    assert "may not review the outputs of a job they submitted" in result.err
    assert_no_traceback(result)
    assert reviews_of(home, job) == []
    assert not any((home / "releases").iterdir())
    assert "awaiting_review" in cli("status", job, who="rc").out
    assert "another" in fix_line(result)


@pytest.mark.slow
@pytest.mark.parametrize("approvals", [0, 1])
def test_a_release_needs_two_reviews(cli, home, reviewable, approvals):
    job = reviewable["rita"]
    if approvals:
        assert cli("review", "approve", job, "-m", "safe", who="carl").code == 0

    result = cli("review", "release", job, who="chen")

    assert result.code == 4
    assert f"job {job} cannot be released yet" in result.err
    assert f"output 'gp_visits_by_area' has {approvals} of the 2 reviews it needs" in result.err
    assert f"output 'gp_visits_model' has {approvals} of the 2 reviews it needs" in result.err
    assert "two output checkers" in fix_line(result)
    assert_no_traceback(result)
    assert not any((home / "releases").iterdir())
    assert "awaiting_review" in cli("status", job, who="rita").out


@pytest.mark.slow
@pytest.mark.parametrize("comment", ["", "   "], ids=["empty", "blank"])
def test_a_review_needs_a_comment(cli, home, reviewable, comment):
    job = reviewable["rita"]

    result = cli("review", "approve", job, "-m", comment, who="carl")

    assert result.code == 2
    assert "every review needs a comment" in result.err
    assert "--comment" in fix_line(result)
    assert_no_traceback(result)
    assert reviews_of(home, job) == []


# -- the TRE home ---------------------------------------------------------------------------


@pytest.mark.parametrize("exists", [True, False], ids=["empty-folder", "no-folder"])
def test_a_missing_home_says_to_run_tre_init(capsys, tmp_path, exists):
    root = tmp_path / "nowhere"
    if exists:
        root.mkdir()

    result = run_tre(capsys, "--home", root, "--as", "rita", "status")

    assert result.code == 6
    assert f"no TRE home at {root}" in result.err
    assert "tre init" in fix_line(result)
    assert_no_traceback(result)
    assert not root.exists() or not any(root.iterdir())


def _garbage_config(home: Path) -> None:
    (home / "tre.yaml").write_text("format: [1\ndemo: {{ yes\n")


def _binary_config(home: Path) -> None:
    (home / "tre.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe not yaml")


def _config_a_list(home: Path) -> None:
    (home / "tre.yaml").write_text("- format\n- demo\n")


def _garbage_db(home: Path) -> None:
    (home / "state.db").write_bytes(b"this is not SQLite " * 512)


def _empty_db(home: Path) -> None:
    (home / "state.db").write_bytes(b"")


def _no_keys(home: Path) -> None:
    shutil.rmtree(home / "keys")


@pytest.mark.parametrize(
    "corrupt",
    [
        _garbage_config,
        _binary_config,
        _config_a_list,
        _garbage_db,
        _empty_db,
        _no_keys,
    ],
    ids=[
        "tre.yaml-garbage",
        "tre.yaml-binary",
        "tre.yaml-a-list",
        "state.db-garbage",
        "state.db-empty",
        "keys-removed",
    ],
)
def test_a_corrupt_home_is_reported_not_crashed_on(
    cli, home, corrupt: Callable[[Path], None]
) -> None:
    corrupt(home)
    before = snapshot(home)

    result = cli("status", "--all", who="ada")

    assert result.code == 6
    assert "corrupt" in result.err or "cannot be opened" in result.err
    assert str(home) in result.err
    assert "restore" in fix_line(result)
    assert_no_traceback(result)
    assert snapshot(home) == before


def test_acting_as_someone_else_needs_a_demo_home(capsys, tmp_path):
    root = tmp_path / "real"
    assert run_tre(capsys, "--home", root, "init", "--admin", "ada").code == 0
    before = snapshot(root)

    result = run_tre(capsys, "--home", root, "--as", "ada", "status")

    assert result.code == 4
    assert "--as works only in a demo home" in result.err
    assert "act as yourself" in fix_line(result)
    assert_no_traceback(result)
    assert snapshot(root) == before


# -- names that do not exist ------------------------------------------------------------------


def test_an_unknown_job_id_is_not_found(cli):
    result = cli("status", "999", who="rita")

    assert result.code == 3
    assert "there is no job 999" in result.err
    assert "tre status" in fix_line(result)
    assert_no_traceback(result)


def test_a_spec_file_that_does_not_exist_is_named(cli, home, tmp_path):
    path = tmp_path / "no_such_job.yaml"

    result = cli("submit", path, who="rita")

    assert result.code == 2
    assert f"cannot read job spec {path}: No such file or directory" in result.err
    assert_no_traceback(result)
    assert job_states(home) == {}
    fix_line(result)


def test_a_job_id_too_big_for_the_store_is_no_job(cli):
    for job_id in ("9223372036854775808", str(2**70), "0"):
        for command in (("status", job_id), ("logs", job_id), ("cancel", job_id)):
            result = cli(*command, who="rita")
            assert result.code == 3, (command, result.out, result.err)
            assert f"there is no job {job_id}" in result.err
