"""The service's side of the sandbox: what a sandboxed job is handed, and what comes back.

What goes in (`plan`, `inside`): the job's sources rewritten to the paths it sees in
its sandbox (`/data`, the key service's socket), and the host folders to bind there:
only the versions of the datasets it was granted.

What comes back (`collect`): everything in the job's `out/` folder was written by
processes that ran researcher code, so none of it is trusted. Before the dispatcher
reads anything, `collect` copies what a job may hand back (its result folder, its
error and progress files) out of `out/` into the job folder, which only the TRE can
read: regular files only (a symlink to a key or to `state.db` is refused, never
followed), within size limits, and then wipes `out/`. The copy is the one checked and
kept, so results are not readable by any job user once the job ends.

For a job whose code is the researcher's (a python step), its error message is held
for the output checkers like its log: what the researcher sees of it is decided in
`tre.service.researcher_view`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from jobs.progress import PROGRESS
from jobs.results import ERROR, RESULT
from jobs.spec import JobSpec
from slurm import sandbox
from tre.errors import PlatformError
from tre.models import Job
from tre.secured.masterkeys import KmsSettings
from tre.secured.reader import SecuredSource
from tre.service.session import Session

OUT = "out"
HELD = "held"  # error messages and files held for the checkers (the log is job.log)
MAX_RESULT_BYTES = 4 << 30
MAX_RESULT_FILES = 10_000
MAX_SMALL_FILE = 1 << 20  # error.json, progress.json
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class UntrustedOutput(PlatformError):
    """What a sandboxed job left behind is not what a job may hand back."""


#: The backends whose jobs run in the sandbox: the embedded default, and one Slurm
#: allocation per job (each of its tasks sandboxed on its node). slurm-cluster runs the
#: engine on the service node and its workers as Slurm jobs: not sandboxed yet.
SANDBOXED_BACKENDS = ("local", "slurm-runner")


def is_sandboxed(session: Session, backend: str) -> bool:
    """Whether jobs of this home on `backend` run in the sandbox."""
    return session.home.config.isolation == "sandbox" and backend in SANDBOXED_BACKENDS


def inside(sources: dict[str, SecuredSource]) -> dict[str, SecuredSource]:
    """The sources as the job sees them in its sandbox: data under /data, keys only
    through the key service's socket."""
    settings = KmsSettings.service(str(sandbox.SANDBOX_KEYS))
    return {
        name: replace(
            source,
            data_root=str(sandbox.SANDBOX_DATA),
            keys_root="",
            kms=settings.pairs(),
        )
        for name, source in sources.items()
    }


def plan(
    session: Session, job: Job, spec: JobSpec, sources: dict[str, SecuredSource]
) -> sandbox.Plan:
    """The sandbox of `job`: its folders, its granted datasets' files, its limits."""
    user = sandbox.job_user()
    folder = session.home.job_dir(job.id)
    out = folder / OUT
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(mode=0o700)
    os.chown(out, user.pw_uid, user.pw_gid)
    # Its input (with its grant) and code: readable by the job's group, writable by no
    # one (and bound read-only); the code is checked against its submitted sha256 anyway.
    for path in [folder / "input.json", *sorted((folder / "code").glob("*.pkl"))]:
        os.chown(path, 0, user.pw_gid)
        os.chmod(path, 0o440)
    if (folder / "code").is_dir():
        os.chown(folder / "code", 0, user.pw_gid)
        os.chmod(folder / "code", 0o550)  # noqa: S103 - the job's group reads its code
    data = []
    for source in sources.values():
        version = f"{source.dataset}/v{source.version}"
        host = session.home.data / version
        if not host.is_dir():
            raise PlatformError(
                f"the files of dataset {source.dataset!r} v{source.version} are missing ({host})",
                fix="restore the data folder from backup",
            )
        _readable_by(host, user.pw_gid)
        data.append((host, version))
    resources = spec.resources
    runtime, hide = sandbox.runtime_paths()
    home = session.home.root
    return sandbox.Plan(
        job_dir=folder,
        out_dir=out,
        data=tuple(data),
        key_socket=session.home.key_socket,
        uid=user.pw_uid,
        gid=user.pw_gid,
        memory_bytes=resources.workers * resources.memory + sandbox.ENGINE_BYTES,
        cpu_seconds=resources.walltime * resources.cores + 600,
        runtime=runtime,
        hide=tuple(
            sorted({*hide, *([home] if any(home.is_relative_to(r) for r in runtime) else [])})
        ),
        environment=sandbox.environment_of({}),
    )


def collect(folder: Path) -> None:
    """Take what a sandboxed job handed back out of `out/` (untrusted) into the job
    folder (the TRE's), refusing links and oversized files; then wipe `out/`."""
    out = folder / OUT
    if not out.is_dir() or out.is_symlink():
        return
    try:
        for name in (ERROR, PROGRESS):
            data = _read_small(out / name)
            if data is not None:
                _write_private(folder / name, data)
        result = out / RESULT
        if _is_dir(result):
            tmp = folder / (RESULT + ".collect")
            if tmp.exists():
                shutil.rmtree(tmp)
            _copy_tree(result, tmp)
            os.replace(tmp, folder / RESULT)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # fd-based: never follows a link out


def read_running_progress(folder: Path) -> dict[str, Any]:
    """A running sandboxed job's progress file, read as untrusted (no links, size cap)."""
    data = _read_small(folder / OUT / PROGRESS)
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _readable_by(folder: Path, gid: int) -> None:
    """Let the job's group read one dataset version's secured files (ciphertext and
    wrapped key material: what they hold is locked by the keys). The rest of the data
    root stays the TRE's alone, and a job is shown only the versions it was granted."""
    for here, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(here, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and (info.st_gid != gid or not info.st_mode & 0o040):
                os.chown(path, info.st_uid, gid)
                os.chmod(path, 0o640)
        info = os.lstat(here)
        if info.st_gid != gid or not info.st_mode & 0o050:
            os.chown(here, info.st_uid, gid)
            os.chmod(here, 0o750)  # noqa: S103 - the job's group reads ciphertext


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _read_small(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a link where a file should be
        raise UntrustedOutput(f"the job left {path.name} as something other than a file") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SMALL_FILE:
            raise UntrustedOutput(f"the job left {path.name} as something other than a small file")
        return handle.read(MAX_SMALL_FILE)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy regular files and folders only, by descriptor, within the limits."""
    target.mkdir(mode=0o700)
    files, total = 0, 0
    stack = [(source, target)]
    while stack:
        here, there = stack.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                if not _NAME.fullmatch(entry.name):
                    raise UntrustedOutput(f"the job's result holds a file named {entry.name!r}")
                if entry.is_symlink():
                    raise UntrustedOutput(f"the job's result holds a link ({entry.name})")
                if entry.is_dir(follow_symlinks=False):
                    (there / entry.name).mkdir(mode=0o700)
                    stack.append((Path(entry.path), there / entry.name))
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as handle:
                    info = os.fstat(handle.fileno())
                    if not stat.S_ISREG(info.st_mode):
                        raise UntrustedOutput(
                            f"the job's result holds a special file ({entry.name})"
                        )
                    files, total = files + 1, total + info.st_size
                    if files > MAX_RESULT_FILES or total > MAX_RESULT_BYTES:
                        raise UntrustedOutput(
                            f"the job's result is over {MAX_RESULT_FILES} files or "
                            f"{MAX_RESULT_BYTES >> 30} GiB"
                        )
                    copy = os.open(there / entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(copy, "wb") as kept:
                        shutil.copyfileobj(handle, kept, 1 << 20)
