"""Before a dispatcher takes any job: can a job start here at all?

`check_can_start(session)` runs the sandbox preflight (`slurm.preflight`) for a home whose
jobs run sandboxed on this host, in a throwaway job folder that it removes again, and
raises `JobsCannotStart` naming every part that failed and its fix. `tre run`,
`tre serve --with-dispatcher`, `tre cluster check` and `make demo` call it, so a broken
setting (a runtime the job user cannot read, a missing `tre-job`, bubblewrap refused)
stops tre at once instead of failing every job it would start.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import sys
import tempfile
from pathlib import Path

from slurm import job_users, preflight, sandbox
from slurm.local import LocalBackend
from tre.errors import PlatformError
from tre.keyservice.process import ensure_running, service_user
from tre.runtime import runtime_paths
from tre.service.sandboxing import is_sandboxed
from tre.service.session import Session

log = logging.getLogger("tre.preflight")
FOLDER_PREFIX = "preflight-"


class JobsCannotStart(PlatformError):
    """This host cannot start a sandboxed job; the reasons name each failing part."""


def check_host() -> None:
    """What needs no home: the sandbox's tools and users are here, and the job user and
    the key service's user can read the Python runtime they run (tre's own, bound into
    the sandbox as it is). JobsCannotStart, with every reason, if not."""
    missing = sandbox.check()
    if missing:
        raise JobsCannotStart(
            "jobs cannot run in the sandbox on this host",
            reasons=missing,
            fix="see docs/operations.md, 'When jobs do not start' (make demo and make test "
            "install what is missing)",
        )
    runtime, _hide = runtime_paths()
    users = [("the sandbox", sandbox.job_user())]
    for slot in job_users.pool():  # every user a job runs as
        users.append(("a job", pwd.getpwuid(slot.job_uid)))
        users.append(("researcher code", pwd.getpwuid(slot.code_uid)))
    if (keys_user := service_user()) is not None:
        users.append(("the key service", keys_user))
    reasons = []
    for who, user in users:
        blocked = preflight.runtime_blockers(sys.executable, runtime, user.pw_uid, user.pw_gid)
        if blocked:
            reasons.append(
                f"python: {who} cannot see {sys.executable} (as {user.pw_name}): "
                f"{'; '.join(blocked)}. Fix: {preflight.RUNTIME_FIX}"
            )
    if reasons:
        raise JobsCannotStart(
            "jobs cannot start here: a sandboxed job would fail at once",
            reasons=reasons,
            fix="see docs/operations.md, 'When jobs do not start'",
        )


def check_can_start(session: Session, backend: str | None = None) -> preflight.Outcome | None:
    """Prove that a sandboxed job of this home starts on this host (None when its jobs do
    not run sandboxed here); JobsCannotStart, with every failing part, if not."""
    backend = backend or session.home.config.backend
    # The embedded default's jobs start on this host, so the probe proves it here; a
    # Slurm backend's start on compute nodes (`tre cluster check`).
    if backend != LocalBackend.name or not is_sandboxed(session, LocalBackend()):
        return None
    check_host()  # before the key service, which runs from the same runtime
    ensure_running(session.home)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=session.home.root))
    try:
        outcome = preflight.run(_plan(session, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not outcome.ok:
        raise JobsCannotStart(
            "jobs cannot start here: a sandboxed job would fail at once",
            reasons=[f"{f.part}: {f.problem}. Fix: {f.fix}" for f in outcome.findings],
            fix="see docs/operations.md, 'When jobs do not start'",
        )
    log.info("sandbox preflight passed in %.2fs", outcome.seconds)
    return outcome


def _plan(session: Session, folder: Path) -> sandbox.Plan:
    """A job's sandbox in the throwaway `folder`: the same runtime, user, key socket and
    limits a job gets, with no data and an empty input."""
    user = sandbox.job_user()
    (folder / "input.json").write_text("{}")
    out = folder / "out"
    out.mkdir(mode=0o700)
    os.chown(out, user.pw_uid, user.pw_gid)
    runtime, hide = runtime_paths()
    home = session.home.root
    return sandbox.Plan(
        job_dir=folder,
        out_dir=out,
        data=(),
        key_socket=session.home.key_socket,
        uid=user.pw_uid,
        gid=user.pw_gid,
        memory_bytes=sandbox.ENGINE_BYTES,
        cpu_seconds=60,
        runtime=runtime,
        hide=tuple(
            sorted({*hide, *([home] if any(home.is_relative_to(r) for r in runtime) else [])})
        ),
        environment=sandbox.environment_of({}),
    )
