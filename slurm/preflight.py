"""The sandbox preflight: before a dispatcher takes any job, start one throwaway sandbox
exactly as a job's would be started and prove, as the job user, that it

1. runs the job's Python (the interpreter, the venv and tre's packages are visible),
2. imports tre's packages and finds the libraries a job needs,
3. reaches the key service's socket and gets an answer,
4. writes its output folder.

A host where any of these fails would start every job only to see it die at once, so
the dispatcher refuses to start instead, naming the part that failed and its fix
(docs/operations.md, "When jobs do not start"). `run()` is the one entry point; the
service side (`tre.service.preflight`) builds the plan from a home.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from slurm import sandbox

MARK = "TRE-PREFLIGHT "
TIMEOUT_SECONDS = 30.0
#: Libraries a job imports: found (not imported, which would cost seconds) by the probe.
LIBRARIES = ("distributed", "dask", "polars", "pyarrow", "cloudpickle", "pydantic", "numpy")

# Runs inside the sandbox as the job user. It imports only tre's package roots and the
# key client, so it costs a fraction of a second; it prints one line of JSON.
PROBE = r"""
import importlib.util, json, os, sys
found = {"python": sys.version.split()[0], "uid": os.getuid()}
try:
    import tre, jobs, slurm, disclosure, policies
    missing = [n for n in sys.argv[1].split(",") if importlib.util.find_spec(n) is None]
    found["imports"] = "ok" if not missing else "not installed: " + ", ".join(missing)
except BaseException as exc:
    found["imports"] = f"{type(exc).__name__}: {exc}"
try:
    from tre.keys.keyclient import ServiceMasterKeys
    keys = ServiceMasterKeys(sys.argv[2])
    keys.ping()
    keys.close()
    found["keys"] = "ok"
except BaseException as exc:
    found["keys"] = f"{type(exc).__name__}: {exc}"
try:
    path = os.path.join(sys.argv[3], "preflight")
    with open(path, "w") as handle:
        handle.write("ok")
    os.unlink(path)
    found["out"] = "ok"
except OSError as exc:
    found["out"] = f"{exc.strerror} ({sys.argv[3]})"
print("TRE-PREFLIGHT " + json.dumps(found), flush=True)
"""


@dataclass(frozen=True)
class Finding:
    """One part of the preflight that failed: what, and how to fix it."""

    part: str
    problem: str
    fix: str


@dataclass(frozen=True)
class Outcome:
    findings: tuple[Finding, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.findings


def probe_plan(plan: sandbox.Plan) -> sandbox.Plan:
    """`plan` with the probe as its program, in place of the job's launcher."""
    program = (
        plan.python,
        "-c",
        PROBE,
        ",".join(LIBRARIES),
        str(sandbox.SANDBOX_KEYS),
        str(sandbox.SANDBOX_OUT),
    )
    return replace(plan, program=program)


def run(plan: sandbox.Plan, timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """Start the probe in `plan`'s sandbox and say what, if anything, failed."""
    started = time.monotonic()
    if hidden_runtime(plan):  # known without starting anything
        return Outcome(tuple(diagnose(plan, 0, "", "")), time.monotonic() - started)
    command = sandbox.command(probe_plan(plan))
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd="/",
            check=False,
        )
    except FileNotFoundError as exc:
        finding = Finding(
            "sandbox",
            f"{exc.filename or command[0]} is not installed",
            "install bubblewrap and util-linux (apt-get install bubblewrap util-linux)",
        )
        return Outcome((finding,), time.monotonic() - started)
    except subprocess.TimeoutExpired:
        finding = Finding(
            "sandbox",
            f"the probe did not finish within {timeout:.0f}s",
            "see whether the host is overloaded, or the key service hangs ('tre keys status')",
        )
        return Outcome((finding,), time.monotonic() - started)
    findings = diagnose(plan, done.returncode, done.stdout, done.stderr)
    return Outcome(tuple(findings), time.monotonic() - started)


def diagnose(plan: sandbox.Plan, code: int, stdout: str, stderr: str) -> list[Finding]:
    """What failed, from the probe's exit status and output (pure, for tests)."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARK)), None)
    hidden = hidden_runtime(plan)
    if hidden:  # the cause of whatever else failed: name the folder, not the symptom
        return [
            Finding(
                "python",
                f"the sandbox cannot see {plan.python}: {'; '.join(hidden)}",
                RUNTIME_FIX,
            )
        ]
    if line is None:
        return [_not_started(plan, code, stderr)]
    found = json.loads(line.removeprefix(MARK))
    findings = []
    if found.get("uid") != plan.uid:
        findings.append(
            Finding(
                "job user",
                f"the probe ran as uid {found.get('uid')}, not the job user's {plan.uid}",
                "run tre as root so that it can start jobs as the job user",
            )
        )
    if found.get("imports") != "ok":
        findings.append(
            Finding(
                "imports",
                f"the sandbox's Python cannot import what a job needs: {found.get('imports')}",
                "install tre with its dependencies into the Python that runs tre "
                "(make demo and make test do this in .venv)",
            )
        )
    if found.get("keys") != "ok":
        findings.append(
            Finding(
                "key service",
                f"a job cannot reach the key service at {plan.key_socket}: {found.get('keys')}",
                "see that the key service runs ('tre keys status'); 'tre keys serve' starts "
                "it in the foreground with its log",
            )
        )
    if found.get("out") != "ok":
        findings.append(
            Finding(
                "output folder",
                f"a job cannot write its output folder {plan.out_dir}: {found.get('out')}",
                "the TRE home's disk may be full or read-only; free space or remount it",
            )
        )
    return findings


RUNTIME_FIX = (
    "install tre where the job user can read it: every folder of the venv and of tre's "
    "packages readable and enterable by others (chmod -R o+rX on them), or a location "
    "such as /opt/tre; a checkout under /tmp or in a home folder works when they are"
)


def hidden_runtime(plan: sandbox.Plan) -> list[str]:
    """Why the job user cannot use the runtime `plan` shows: its Python, or a folder of
    it (the venv, tre's packages) it may not read and enter. Empty when it can."""
    return runtime_blockers(plan.python, plan.runtime, plan.uid, plan.gid)


def runtime_blockers(python: str, runtime: tuple[Path, ...], uid: int, gid: int) -> list[str]:
    """Why the user `uid`/`gid` cannot run `python` with the folders `runtime` (each
    bound as it is, the folders above them made 0755). Empty when it can."""
    shown = (*runtime, Path("/usr"))
    found = []
    if why := unreachable(Path(python), uid, gid, shown):
        found.append(why)
    for folder in runtime:
        why = _denied(folder, uid, gid, stat.S_IROTH | stat.S_IXOTH, "read")
        if why and not any(f" {folder} (" in said for said in found):
            found.append(why)
    return found


def _not_started(plan: sandbox.Plan, code: int, stderr: str) -> Finding:
    """The probe printed nothing: the sandbox, or the Python in it, did not start."""
    said = _last_lines(stderr)
    if code in (126, 127):
        return Finding(
            "python",
            f"the sandbox cannot run {plan.python}: {said or 'no such file or not executable'}",
            RUNTIME_FIX,
        )
    return Finding(
        "sandbox",
        f"the sandbox did not start (exit status {code}): {said or 'it said nothing'}",
        "see that bubblewrap may create namespaces here (kernel.unprivileged_userns_clone "
        "or running as root) and that cgroups are writable",
    )


def _last_lines(text: str, count: int = 3) -> str:
    lines = [ln.strip()[:300] for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-count:])


def unreachable(path: Path, uid: int, gid: int, shown: tuple[Path, ...]) -> str:
    """Why the user `uid`/`gid` (no other groups) cannot run `path` in the sandbox, or
    '' if it can.

    Follows links, checking the file for read and execute and each folder on the way
    for search permission, as the kernel would inside the sandbox: only the folders of
    the bound trees `shown` keep their modes there (the folders above them are made
    0755), and a path outside every one of them is not in the sandbox at all."""
    seen = 0
    current = Path(path)
    while True:
        seen += 1
        if seen > 40:
            return f"{path} is a loop of links"
        if not any(current.is_relative_to(tree) for tree in shown):
            return f"{current} is outside the folders the sandbox shows"
        for folder in [*reversed(current.parents)][1:]:
            if not any(folder.is_relative_to(tree) for tree in shown):
                continue
            why = _denied(folder, uid, gid, stat.S_IXOTH, "enter")
            if why:
                return why
        if not current.is_symlink():
            break
        current = (current.parent / os.readlink(current)).resolve(strict=False)
    if not current.exists():
        return f"{current} does not exist"
    return _denied(current, uid, gid, stat.S_IROTH | stat.S_IXOTH, "run")


def _denied(path: Path, uid: int, gid: int, want: int, verb: str) -> str:
    """Why `uid` may not `verb` `path` by its mode bits ('' if it may). `want` is given
    as the 'other' bits; they are shifted for the owner and the group."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if uid == 0:
        return ""
    if info.st_uid == uid:
        bits = want << 6
    elif info.st_gid == gid:
        bits = want << 3
    else:
        bits = want
    if info.st_mode & bits == bits:
        return ""
    mode = stat.S_IMODE(info.st_mode)
    return (
        f"the user uid {uid} cannot {verb} {path} "
        f"(mode {mode:04o}, owner uid {info.st_uid}, group gid {info.st_gid})"
    )
