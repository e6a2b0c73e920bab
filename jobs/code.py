"""A job's code on disk: each python step's cloudpickled function, `code/<step>.pkl`.

Unpickling runs code, and a job's code runs under the submitter's key grant, so code
that changed after submission must never run:

1. At submission the files are written read-only (0400) in a read-only code/ (0500),
   the path built only from a step name checked against tre's name grammar, and the
   sha256 of each file is recorded with the job (and `code_hash` over all of them).
2. Before starting a job the dispatcher re-hashes code/ against those records
   (`check_submitted`) and fails the job if anything differs.
3. The job's own process checks each file against the sha256 the dispatcher put in
   input.json (`read_checked`) before the engine unpickles any of it, which closes the
   gap between the dispatcher's check and the job's start.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from jobs.errors import CodeChanged
from tre.names import check_name

CODE = "code"
_FIX = (
    "tell the TRE administrators: tre never changes a submitted job's code, so someone "
    "changed the job folder; then submit the job again"
)


def code_path(step: str) -> str:
    """Where a python step's pickle lives, relative to the job folder. The name is checked
    against the grammar of step names first, so no name can lead out of code/."""
    check_name(step, "object", "python step name")
    return f"{CODE}/{step}.pkl"


def sha256s(pickles: dict[str, bytes]) -> dict[str, str]:
    """The sha256 (hex) of each step's pickled bytes."""
    return {step: hashlib.sha256(data).hexdigest() for step, data in pickles.items()}


def combined_hash(digests: dict[str, str]) -> str | None:
    """sha256 over every step's name and pickle sha256, in step order; None without steps."""
    if not digests:
        return None
    digest = hashlib.sha256()
    for step in sorted(digests):
        digest.update(step.encode() + b"\0" + bytes.fromhex(digests[step]))
    return digest.hexdigest()


def code_hash(pickles: dict[str, bytes]) -> str | None:
    """The job record's `code_hash`: `combined_hash` of the pickles' sha256s."""
    return combined_hash(sha256s(pickles))


def write_code(job_dir: Path, pickles: dict[str, bytes]) -> None:
    """Write each step's pickle read-only into a new code/, then make code/ read-only."""
    folder = job_dir / CODE
    folder.mkdir(mode=0o700)
    for step, data in pickles.items():
        # O_EXCL and O_NOFOLLOW: never write through something planted in the folder.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(job_dir / code_path(step), flags, 0o400), "wb") as handle:
            handle.write(data)
    folder.chmod(0o500)


def unlock_code(job_dir: Path) -> None:
    """Make code/ writable again so the folder it is in can be removed."""
    folder = job_dir / CODE
    if folder.is_dir() and not folder.is_symlink():
        folder.chmod(0o700)


def check_submitted(
    job_dir: Path, steps: Iterable[str], submitted_hash: str | None, submitted: dict[str, str]
) -> dict[str, str]:
    """The sha256 of each step's pickle, once code/ is checked against what was recorded at
    submission: each step's sha256 where recorded, and always `code_hash`. CodeChanged
    names every step that differs."""
    steps = list(steps)
    found: dict[str, str] = {}
    changed: list[str] = []
    problems = []
    for step in steps:
        data = _read(job_dir, step)
        if data is None:
            changed.append(step)
            problems.append(
                f"python step {step!r}: {code_path(step)} is missing or not a regular file"
            )
            continue
        found[step] = hashlib.sha256(data).hexdigest()
        if step in submitted and found[step] != submitted[step]:
            changed.append(step)
            problems.append(
                f"python step {step!r}: {code_path(step)} has sha256 {found[step]}, "
                f"but {submitted[step]} was submitted"
            )
    if not problems and combined_hash(found) != submitted_hash:
        # Jobs submitted before each step's sha256 was recorded carry only code_hash, which
        # cannot say which step changed.
        changed = steps
        problems.append(
            f"code/ hashes to {combined_hash(found)}, but the job's code_hash at submission "
            f"was {submitted_hash}"
        )
    if problems:
        raise CodeChanged(
            f"the code of python step(s) {', '.join(map(repr, changed)) or '(none)'} was "
            "changed after the job was submitted, so the job was not run",
            reasons=problems,
            fix=_FIX,
        )
    return found


def read_checked(job_dir: Path, code: dict[str, str], digests: dict[str, str]) -> dict[str, bytes]:
    """Each step's pickle (`code`: step -> path in the job folder), every one checked
    against its sha256 in `digests` before any is returned; CodeChanged otherwise."""
    pickles = {}
    for step, path in code.items():
        try:
            expected_path = code_path(step)
        except ValueError as exc:
            raise CodeChanged(f"{exc}, so the job was not run", fix=_FIX) from exc
        if path != expected_path:
            raise CodeChanged(
                f"the job input names {path!r} as the code of python step {step!r}, "
                f"not {expected_path!r}, so the job was not run",
                fix=_FIX,
            )
        expected = digests.get(step)
        if expected is None:
            raise CodeChanged(
                f"the job input records no sha256 for python step {step!r}, so its code "
                "cannot be checked and the job was not run",
                fix="the dispatcher writes it: restart the job with an up-to-date 'tre run'",
            )
        data = _read(job_dir, step)
        if data is None:
            raise CodeChanged(
                f"the code of python step {step!r} ({path}) is missing or not a regular file, "
                "so the job was not run",
                fix=_FIX,
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise CodeChanged(
                f"the code of python step {step!r} was changed after the job was submitted "
                f"({path} has sha256 {actual}, {expected} was submitted), so the job was "
                "not run",
                fix=_FIX,
            )
        pickles[step] = data
    return pickles


def _read(job_dir: Path, step: str) -> bytes | None:
    """A step's pickle, or None if it is missing or not a regular file (a symlink put in
    its place is never followed)."""
    try:
        # O_NONBLOCK: a FIFO put in its place cannot hang the reader (no effect on files).
        fd = os.open(job_dir / code_path(step), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()
