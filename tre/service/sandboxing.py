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

import os
import shutil
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from jobs.progress import PROGRESS
from jobs.results import ERROR, RESULT
from jobs.spec import JobSpec, PythonStep
from jobs.untrusted import (
    copy_tree,
    is_dir,
    read_small,
    write_private,
)
from slurm import sandbox
from slurm.backend import Backend
from slurm.job_users import Slot
from slurm.scripts import LOG_FOLDER as SLURM_LOGS
from slurm.tls import GATEWAY_CA, GATEWAY_CERT, GATEWAY_KEY
from tre.errors import PlatformError
from tre.keys.grants import peek
from tre.keys.keyclient import TLS_SCHEME
from tre.keys.masterkeys import KmsSettings
from tre.keys.tls_ca import CA_CERT, ensure_ca, issue_job
from tre.keyservice.gateway_process import ensure_gateway, tls_dir
from tre.models import Job
from tre.runtime import runtime_paths
from tre.secured.reader import SecuredSource

# Where a sandboxed job writes is defined with the reading of its progress, which must
# not load this module's imports (tre status answers at once).
from tre.service.job_progress import HANDOVER as HANDOVER
from tre.service.job_progress import OUT as OUT
from tre.service.session import Session


def is_sandboxed(session: Session, backend: Backend) -> bool:
    """Whether jobs of this home run in the sandbox on `backend` (it says whether it can:
    all three backends do)."""
    return session.home.config.isolation == "sandbox" and backend.sandboxed


def inside(
    sources: dict[str, SecuredSource], gateway: str | None = None
) -> dict[str, SecuredSource]:
    """The sources as the job sees them in its sandbox: data under /data, keys only
    through the key service's socket, or through the key gateway at `gateway`
    (HOST:PORT) with the job's certificate (`gateway_files`)."""
    settings = KmsSettings.service(str(sandbox.SANDBOX_KEYS))
    if gateway:
        settings = replace(
            settings,
            socket=f"{TLS_SCHEME}{gateway}",
            tls_ca=str(sandbox.SANDBOX_JOB / GATEWAY_CA),
            tls_cert=str(sandbox.SANDBOX_JOB / GATEWAY_CERT),
            tls_key=str(sandbox.SANDBOX_JOB / GATEWAY_KEY),
            # A sandbox on the service node has the socket as well (slurm-cluster's
            # engine, and python steps with no network at all): it uses that.
            near_socket=str(sandbox.SANDBOX_KEYS),
        )
    return {
        name: replace(
            source,
            data_root=str(sandbox.SANDBOX_DATA),
            keys_root="",
            kms=settings.pairs(),
        )
        for name, source in sources.items()
    }


def gateway_files(
    session: Session, job: Job, slot: Slot, sources: dict[str, SecuredSource], gateway: str
) -> None:
    """Give `job` what it shows the key gateway at `gateway`: a certificate naming it
    from the home's CA, valid until its grant ends, with its key and the CA's
    certificate, in its folder for its sandbox (readable by the job's group only); and
    start the gateway if it is not answering."""
    ends = min((peek(s.token).expires for s in sources.values() if s.token), default=0)
    until = datetime.fromtimestamp(ends, UTC) if ends else datetime.now(UTC)
    ca = tls_dir(session.home)
    ensure_ca(ca)
    issued = issue_job(ca, job.id, until)
    folder = session.home.job_dir(job.id)
    for name, data in (
        (GATEWAY_CA, (ca / CA_CERT).read_bytes()),
        (GATEWAY_CERT, issued.cert),
        (GATEWAY_KEY, issued.key),
    ):
        path = folder / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chown(path, 0, slot.gid)
    ensure_gateway(session.home, gateway)


def plan(
    session: Session,
    job: Job,
    slot: Slot,
    spec: JobSpec,
    sources: dict[str, SecuredSource],
    as_job_user: bool = False,
    reach: bool = False,
) -> sandbox.Plan:
    """The sandbox of `job`, run by the users of its `slot`: its folders, its granted
    datasets' files, its limits. `as_job_user`: the backend starts the job as its job
    user (Backend.runs_as_job_user), which must then reach its folder and its data
    itself, and runs bubblewrap unprivileged; `reach`: some of its processes are
    (Backend.reaches_as_job_user), though tre starts its engine."""
    folder = session.home.job_dir(job.id)
    out = folder / OUT
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(mode=0o700)
    os.chown(out, slot.job_uid, slot.gid)
    # Its input (with its grant) and code: readable by its slot's group, writable by no
    # one (and bound read-only); the code is checked against its submitted sha256 anyway.
    for path in [folder / "input.json", *sorted((folder / "code").glob("*.pkl"))]:
        os.chown(path, 0, slot.gid)
        os.chmod(path, 0o440)
    if (folder / "code").is_dir():
        os.chown(folder / "code", 0, slot.gid)
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
        _readable_by(host, slot.data_gid)
        data.append((host, version))
    if as_job_user or reach:
        reach_for_job_user(session.home.root, [folder, *(host for host, _ in data)], slot)
    resources = spec.resources
    runtime, hide = runtime_paths()
    home = session.home.root
    return sandbox.Plan(
        job_dir=folder,
        out_dir=out,
        data=tuple(data),
        key_socket=session.home.key_socket,
        uid=slot.job_uid,
        gid=slot.gid,
        groups=(slot.data_gid,),
        unprivileged=as_job_user,
        memory_bytes=resources.workers * resources.memory + sandbox.ENGINE_BYTES,
        cpu_seconds=resources.walltime * resources.cores + 600,
        runtime=runtime,
        hide=tuple(
            sorted({*hide, *([home] if any(home.is_relative_to(r) for r in runtime) else [])})
        ),
        environment=sandbox.environment_of({}),
    )


def code_plan(
    engine: sandbox.Plan, slot: Slot, spec: JobSpec
) -> tuple[sandbox.Plan, sandbox.Plan] | None:
    """Split a job with python steps in two sandboxes (jobs/handover.py): its python
    steps first, as its slot's code user, writing only to their own folder; then the
    engine, as the slot's job user, which sees that folder read-only. (engine's plan,
    code's plan), or None for a job without python steps.

    A job started as its job user (an unprivileged sandbox) cannot become the code user:
    its code's phase then runs as the job user too, kept from the engine's by running
    first, in a sandbox of its own that sees neither the engine's folder nor its
    processes, all of which end with it (docs/threat-model.md)."""
    if not any(isinstance(s, PythonStep) for s in spec.steps):
        return None
    handover = engine.job_dir / HANDOVER
    if handover.exists():
        shutil.rmtree(handover)
    # The code's own: the engine reads it through the group, and writes nothing there.
    handover.mkdir(mode=0o750)
    code_uid = engine.uid if engine.unprivileged else slot.code_uid
    os.chown(handover, code_uid, slot.gid)
    code = replace(engine, out_dir=handover, uid=code_uid, phase="code")
    return replace(engine, phase="engine", handover=handover), code


def collect(folder: Path) -> None:
    """Take what a sandboxed job handed back out of `out/` (untrusted) into the job
    folder (the TRE's), refusing links and oversized files; then wipe `out/`."""
    out = folder / OUT
    if not out.is_dir() or out.is_symlink():
        return
    try:
        for name in (ERROR, PROGRESS):
            data = read_small(out / name)
            if data is None and name == PROGRESS and is_dir(folder / HANDOVER):
                # Stopped while its python steps ran, before the engine's phase began:
                # it did start (tre/service/start_failure.py).
                data = read_small(folder / HANDOVER / name)
            if data is not None:
                write_private(folder / name, data)
        result = out / RESULT
        if is_dir(result):
            tmp = folder / (RESULT + ".collect")
            if tmp.exists():
                shutil.rmtree(tmp)
            copy_tree(result, tmp)
            os.replace(tmp, folder / RESULT)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # fd-based: never follows a link out
        shutil.rmtree(folder / HANDOVER, ignore_errors=True)


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


def reach_for_job_user(home: Path, folders: list[Path], slot: Slot) -> None:
    """Let a job started as its job user reach `folders` (its own folder, its granted
    dataset versions) in `home` itself, and nothing else there: every folder on the way
    from `home` down gets the pool's group with search (x) only, so a name must be known
    to be reached; `home`'s own files lose whatever others could read of them; the job
    folder is its slot's group's. A folder above `home` the job user cannot pass is the
    site's to open: PlatformError naming it."""
    for above in reversed(home.parents):
        info = os.stat(above)
        if not (info.st_mode & 0o001 or (info.st_gid == slot.data_gid and info.st_mode & 0o010)):
            raise PlatformError(
                f"the job users cannot reach the TRE home: {above} (mode "
                f"{stat.S_IMODE(info.st_mode):04o}) does not let them pass",
                fix=f"chmod o+x {above}, or keep TRE_HOME under folders every user may pass "
                "(jobs submitted as their job user reach their folder themselves)",
            )
    for entry in os.scandir(home):
        if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mode & 7:
            os.chmod(entry.path, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) & ~0o007)
    for folder in folders:
        for passed in folder.parents:  # its folder's own mode is its own (below)
            if not passed.is_relative_to(home):
                break
            _searchable_by(passed, slot.data_gid)
    for folder in folders:
        if folder.is_relative_to(home / "jobs"):
            os.chown(folder, 0, slot.gid)
            os.chmod(folder, 0o750)  # noqa: S103 - its own slot's group, for its job user


def _searchable_by(folder: Path, gid: int) -> None:
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise PlatformError(f"{folder} is not a folder", fix="restore the TRE home from backup")
    if info.st_gid != gid or not info.st_mode & 0o010:
        os.chown(folder, info.st_uid, gid)
        os.chmod(folder, (stat.S_IMODE(info.st_mode) & ~0o070) | 0o010)  # noqa: S103 - search only, for the pool


def release(folder: Path) -> None:
    """Once a sandboxed job stopped running: take back from its slot's group what it was
    shown (its input with its grant, its code, its folder, the log its job user wrote)
    and remove its gateway certificate and key, so the next job of the same slot can
    read none of it, even outside a sandbox."""
    for name in (GATEWAY_CERT, GATEWAY_KEY, GATEWAY_CA):
        (folder / name).unlink(missing_ok=True)
    logs = folder / SLURM_LOGS
    if is_dir(logs):
        for here, dirs, files in os.walk(logs):  # never follows a link
            for name in [*dirs, *files]:
                os.lchown(os.path.join(here, name), 0, 0)
        os.chown(logs, 0, 0)
        os.chmod(logs, 0o700)
    info = os.lstat(folder)
    if info.st_gid != 0 and stat.S_ISDIR(info.st_mode):
        os.chown(folder, info.st_uid, 0)
        os.chmod(folder, 0o700)
    code = folder / "code"
    for path in [folder / "input.json", *(sorted(code.glob("*.pkl")) if is_dir(code) else [])]:
        if path.is_file() and not path.is_symlink():
            os.chown(path, 0, 0)
            os.chmod(path, 0o400)
    if is_dir(code):
        os.chown(code, 0, 0)
        os.chmod(code, 0o700)
