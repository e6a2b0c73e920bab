"""A job's code on disk (jobs/code.py): written read-only, checked against what was
submitted at dispatch and again before the job's process unpickles it."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from jobs.code import check_submitted, code_hash, code_path, sha256s, write_code
from jobs.errors import CodeChanged
from jobs.job_input import JobInput
from jobs.spec import parse_spec

SUBMITTED = {"first": b"the first step's pickle", "second": b"the second step's pickle"}
SPEC = parse_spec(
    {
        "project": "lcr-health",
        "title": "Two python steps",
        "datasets": {"residents": ["local_authority"]},
        "steps": [
            {"kind": "python", "name": step, "function": f"{step}.py:main"} for step in SUBMITTED
        ],
    }
)


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    folder.mkdir()
    write_code(folder, SUBMITTED)
    return folder


def replace(job_dir: Path, step: str, data: bytes) -> None:
    """What someone with the server's rights could do despite the read-only modes."""
    code = job_dir / "code"
    code.chmod(0o700)
    (code / f"{step}.pkl").unlink()
    (code / f"{step}.pkl").write_bytes(data)
    code.chmod(0o500)


def job_input(job_dir: Path) -> JobInput:
    """The input the dispatcher writes, after checking code/ as submitted."""
    digests = check_submitted(job_dir, SUBMITTED, code_hash(SUBMITTED), sha256s(SUBMITTED))
    return JobInput(
        job_id=1,
        spec=SPEC,
        sources={},
        code={step: code_path(step) for step in digests},
        code_sha256=digests,
    )


def test_code_is_written_read_only_in_a_read_only_folder(job_dir):
    assert stat.S_IMODE((job_dir / "code").stat().st_mode) == 0o500
    for step in SUBMITTED:
        assert stat.S_IMODE((job_dir / "code" / f"{step}.pkl").stat().st_mode) == 0o400


def test_unchanged_code_loads_as_submitted(job_dir):
    assert job_input(job_dir).pickles(job_dir) == SUBMITTED


def test_code_replaced_after_dispatch_is_refused_before_any_is_returned(job_dir):
    checked = job_input(job_dir)
    replace(job_dir, "second", b"someone else's code")
    with pytest.raises(CodeChanged) as info:
        checked.pickles(job_dir)
    message = info.value.render()
    assert "python step 'second' was changed after the job was submitted" in message
    assert "the job was not run" in message
    assert "TRE administrators" in message


def test_an_input_without_the_submitted_sha256_loads_nothing(job_dir):
    unchecked = job_input(job_dir).model_copy(update={"code_sha256": {}})
    with pytest.raises(CodeChanged, match="records no sha256 for python step 'first'"):
        unchecked.pickles(job_dir)


def test_an_input_pointing_elsewhere_loads_nothing(job_dir, tmp_path):
    (tmp_path / "other.pkl").write_bytes(SUBMITTED["first"])
    elsewhere = job_input(job_dir)
    elsewhere.code["first"] = "../other.pkl"
    with pytest.raises(CodeChanged, match=r"names '\.\./other\.pkl' as the code of python step"):
        elsewhere.pickles(job_dir)


def test_an_input_naming_a_step_outside_the_grammar_loads_nothing(job_dir):
    odd = job_input(job_dir)
    odd.code_sha256["../first"] = odd.code_sha256["first"]
    odd.code = {"../first": "code/../first.pkl"}
    with pytest.raises(CodeChanged, match=r"python step name '\.\./first' is not allowed"):
        odd.pickles(job_dir)


def test_the_dispatch_check_names_the_step_that_changed(job_dir):
    replace(job_dir, "first", b"someone else's code")
    with pytest.raises(CodeChanged) as info:
        check_submitted(job_dir, SUBMITTED, code_hash(SUBMITTED), sha256s(SUBMITTED))
    assert info.value.message.startswith("the code of python step(s) 'first' was changed")
    assert any("code/first.pkl has sha256" in r for r in info.value.reasons)


def test_the_dispatch_check_of_a_job_with_only_a_code_hash(job_dir):
    # Jobs queued before each step's sha256 was recorded still have code_hash checked.
    assert check_submitted(job_dir, SUBMITTED, code_hash(SUBMITTED), {}) == sha256s(SUBMITTED)
    replace(job_dir, "first", b"someone else's code")
    with pytest.raises(CodeChanged, match="'first', 'second' was changed after"):
        check_submitted(job_dir, SUBMITTED, code_hash(SUBMITTED), {})


def test_a_missing_pickle_or_a_symlink_in_its_place_is_refused(job_dir, tmp_path):
    code = job_dir / "code"
    code.chmod(0o700)
    (code / "first.pkl").unlink()
    (tmp_path / "elsewhere.pkl").write_bytes(SUBMITTED["first"])
    os.symlink(tmp_path / "elsewhere.pkl", code / "second.pkl.tmp")
    os.replace(code / "second.pkl.tmp", code / "second.pkl")
    with pytest.raises(CodeChanged) as info:
        check_submitted(job_dir, SUBMITTED, code_hash(SUBMITTED), sha256s(SUBMITTED))
    assert "code/first.pkl is missing" in info.value.reasons[0]
    assert "code/second.pkl is missing or not a regular file" in info.value.reasons[1]


@pytest.mark.parametrize("step", ["../escaped", "/tmp/absolute", "a/b", "Upper", ""])
def test_no_path_is_built_from_a_name_outside_the_grammar(step, tmp_path):
    with pytest.raises(ValueError, match="python step name"):
        code_path(step)
    (tmp_path / "job").mkdir()
    with pytest.raises(ValueError, match="python step name"):
        write_code(tmp_path / "job", {step: b"x"})
    assert not list(Path("/tmp").glob("absolute*.pkl"))
    assert not list(tmp_path.rglob("*.pkl"))


def test_the_code_hash_is_the_one_recorded_before_per_step_hashes():
    # code_hash is in job records and audit events already: it must not change meaning.
    digest = hashlib.sha256()
    for step in sorted(SUBMITTED):
        digest.update(step.encode() + b"\0" + hashlib.sha256(SUBMITTED[step]).digest())
    assert code_hash(SUBMITTED) == digest.hexdigest()
    assert code_hash({}) is None
