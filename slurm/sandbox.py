"""The sandbox a job's processes run in on the embedded default: bubblewrap, as `tre-job`.

Why bubblewrap: it is Debian's (and Flatpak's) unprivileged sandbox, a single small
setuid-free binary that builds a fresh mount, pid, network, IPC and UTS namespace from
an explicit list of what to show, so what a job can see is the list below and nothing
else. nsjail and firejail do more but are larger, and firejail's history of privilege
bugs counts against it; a container runtime would need a daemon here.

Inside, the job (the engine, its Dask scheduler and workers, researcher code) sees:

    /usr, /bin, /lib...       the system, read-only
    a few files of /etc       what Python and glibc need (no shadow, no keys)
    the Python runtime        read-only (the interpreter, the venv, tre's own code)
    /job/input.json, /job/code   its input and pickled code, read-only
    /job/out                  the only place it can write on disk (results, progress)
    /data/<dataset>/v<n>      the secured files of its granted datasets, read-only
    /run/tre/keys.sock        the key service's socket: its only way to keys
    /tmp                      a private tmpfs of limited size
    lo                        a network namespace of its own: its Dask cluster talks over
                              loopback, and nothing else can be reached or reach it

It runs as an unprivileged OS user of its own, `tre-job-<k>` of the job users' pool
(slurm/job_users.py: no two running jobs share one), bubblewrap starting as root to
build the namespaces, then `setpriv` dropping to the job user with no capabilities and
no_new_privs, so even a file it could name it could not read: TRE_HOME is 0700 and
the key store belongs to `tre-keys`. Limits come from the job's resources: memory and
processes per job through a cgroup where the host offers one, CPU time, processes per
user and file size through rlimits.

A job with python steps runs in two such sandboxes, one after the other
(`in_sequence`): first its python steps, as `tre-code-<k>` (the job user's group, so it
reads the same inputs), writing only to their own folder; then the engine as
`tre-job-<k>`, seeing that folder read-only at /job/handover (jobs/handover.py).

`command()` is a pure function of a `Plan`, so the exact command is tested without
running it; `check()` says what this host lacks.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from slurm import job_users
from tre.errors import PlatformError

__all__ = ["JOB_USER", "Plan", "SandboxUnavailable", "check", "command", "job_user"]

#: The sandbox preflight's user, and the group of the job users' pool that reads the
#: granted datasets' ciphertext. Jobs run as the users of a slot of the pool
#: (slurm/job_users.py): the engine as `tre-job-<k>`, researcher code (python steps),
#: in a sandbox of its own before the engine's, as `tre-code-<k>`, which shares the job
#: user's group to read the job's inputs and data, but no writable file, and no process
#: of it can signal or trace the engine.
JOB_USER = job_users.DATA_GROUP
SANDBOX_HANDOVER = Path("/job/handover")
SANDBOX_JOB = Path("/job")
SANDBOX_OUT = SANDBOX_JOB / "out"
SANDBOX_DATA = Path("/data")
SANDBOX_KEYS = Path("/run/tre/keys.sock")
SANDBOX_TMP = "/tmp"  # noqa: S108 - the sandbox's own private tmpfs
SANDBOX_SCRATCH = Path(SANDBOX_TMP) / "scratch"
#: What Python, glibc and OpenBLAS read from /etc; nothing that holds a secret.
ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "nsswitch.conf",
    "passwd",
    "group",
    "hosts",
    "host.conf",
    "gai.conf",
    "mime.types",
    "os-release",
    "alternatives",
    "ssl/openssl.cnf",
)
#: Environment variables a job keeps (threading and numerics settings); the rest go.
KEEP_ENV = ("OPENBLAS_", "OMP_", "MKL_", "POLARS_", "RAYON_", "DASK_")
TMP_BYTES = 1 << 30
SHM_BYTES = 256 << 20
FILE_BYTES = 2 << 30
PROCESSES_PER_USER = 4096
ENGINE_BYTES = 1 << 30  # the engine, the scheduler and the nannies, beside the workers


class SandboxUnavailable(PlatformError):
    """This host cannot run jobs in the sandbox (it says what is missing)."""


@dataclass(frozen=True)
class Plan:
    """Everything one job's sandbox is made of (host paths, limits, who runs it)."""

    job_dir: Path
    out_dir: Path
    data: tuple[tuple[Path, str], ...]  # (host folder, path under /data)
    key_socket: Path | None  # None: keys through the key gateway (slurm.tls.GATEWAY_FILES)
    uid: int
    gid: int
    memory_bytes: int  # the whole job
    cpu_seconds: int  # per process
    python: str = sys.executable
    runtime: tuple[Path, ...] = ()  # read-only folders Python and tre need
    hide: tuple[Path, ...] = ()  # folders inside `runtime` that must stay invisible
    cgroups: tuple[Path, ...] = ()  # cgroup folders the job is put in (made by the backend)
    #: slurm-runner: the job's cgroups are made on the service node, so a task on another
    #: host (no `tre` cgroup folder there) relies on Slurm's own process tracking
    #: (proctrack/cgroup, docs/slurm.md); where tre's folders exist (this host, or a node
    #: sharing its kernel), it joins, and a job's group gone (cancelled) stops the task.
    cgroups_here_only: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    cluster: str = "local"
    #: slurm-runner: the allocation's tasks talk over the node's network (the site's
    #: compute network; its policy applies), so the sandbox keeps it.
    share_net: bool = False
    #: Files of the job folder bound read-only under /job (slurm-runner: its cluster
    #: settings and TLS certificate).
    extra: tuple[str, ...] = ()
    #: slurm-runner: each task keeps the environment Slurm gives it (its rank), less
    #: these variables of the service's own, which the allocation would inherit.
    unset: tuple[str, ...] | None = None
    #: What runs in the sandbox instead of `python -m slurm.launch` (the preflight's
    #: probe); empty for a job.
    program: tuple[str, ...] = ()
    #: The job's phase: "all" (engine and researcher code, on Slurm), "code" (the
    #: python steps alone, as the code user) or "engine" (the rest, with the code's
    #: phase's folder `handover` bound read-only: its one door, jobs/handover.py).
    phase: str = "all"
    handover: Path | None = None
    #: Supplementary groups of the job's processes: the data group of the job users'
    #: pool (slurm/job_users.py), which reads the granted datasets' ciphertext.
    groups: tuple[int, ...] = ()
    #: slurm-runner submitted as the job user (SiteProfile.submit_via_sudo): the task
    #: already is that user, so bubblewrap runs unprivileged, in a user namespace of its
    #: own that may make no other, with no capability; no cgroup to join (Slurm's own).
    unprivileged: bool = False
    #: Processes whose parent is Slurm's (a slurm-runner task, a slurm-cluster worker):
    #: when the parent goes, so does the sandbox. Never for an engine the dispatcher
    #: started, which a restarted dispatcher adopts.
    die_with_parent: bool = False
    #: Host folders shown read-only at their own path: slurm-cluster's engine sees
    #: Slurm's configuration and munge's socket, to submit its workers (as its job user).
    host_binds: tuple[Path, ...] = ()


def job_user() -> pwd.struct_passwd:
    """The OS user jobs run as; SandboxUnavailable if it does not exist."""
    try:
        return pwd.getpwnam(JOB_USER)
    except KeyError:
        raise SandboxUnavailable(
            f"the OS user {JOB_USER!r} that jobs run as does not exist",
            fix="create it as root: useradd --system --no-create-home --shell "
            f"/usr/sbin/nologin {JOB_USER} (make test and make demo do this)",
        ) from None


def in_sequence(first: list[str], then: list[str]) -> list[str]:
    """Run `first`, then `then` whatever `first`'s exit status (the engine says what
    became of the code's phase); the exit status is `then`'s."""
    return ["/bin/sh", "-c", f"{shlex.join(first)}; exec {shlex.join(then)}"]


def check() -> list[str]:
    """What this host lacks to run sandboxed jobs; empty when it has everything."""
    problems = []
    if os.geteuid() != 0:
        problems.append(
            "tre must run as root to start jobs as their own user (or use isolation: none "
            "on a development machine, where researcher code is trusted)"
        )
    for tool, package in (
        ("bwrap", "bubblewrap"),
        ("setpriv", "util-linux"),
        ("prlimit", "util-linux"),
    ):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed (apt-get install {package})")
    try:
        job_user()
    except SandboxUnavailable as exc:
        problems.append(f"{exc.message} ({exc.fix})")
    try:
        job_users.pool()
    except job_users.NoJobUsers as exc:
        problems.append(f"{exc.message} ({exc.fix})")
    return problems


def parents_to_make(paths: tuple[Path, ...]) -> list[Path]:
    """Every folder above `paths` that the sandbox must make, outermost first (not the
    system's, nor the sandbox's own /tmp, /dev and /proc, which it has already made)."""
    made: list[Path] = []
    own = {Path(SANDBOX_TMP), Path("/dev"), Path("/proc")}
    for path in paths:
        for parent in reversed(path.parents):
            if (
                parent != Path("/")
                and parent not in made
                and parent not in own
                and not parent.is_relative_to("/usr")
            ):
                made.append(parent)
    return sorted(made, key=lambda p: len(p.parts))


def system_binds() -> list[str]:
    """The system, read-only: /usr, the /bin and /lib links or folders, a few files of
    /etc."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # bubblewrap makes a missing mount point's parents 0700 root: the job user could
    # then read none of these (nor resolve a name through nsswitch and hosts).
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def drop_to(uid: int, gid: int, groups: tuple[int, ...] = ()) -> list[str]:
    """Inside a sandbox bubblewrap started as root: become `uid`/`gid` with no other
    groups than `groups`, no capabilities and no way to gain any (the job's, the code's
    or the key service's user)."""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def command(plan: Plan) -> list[str]:
    """The command that runs `python -m slurm.launch` for `plan`'s job in its sandbox."""
    limits = [
        "prlimit",
        f"--nproc={PROCESSES_PER_USER}",
        f"--fsize={FILE_BYTES}",
        f"--cpu={plan.cpu_seconds}",
        "--core=0",
        "--",
    ]
    bwrap = [
        "bwrap",
        "--unshare-pid",
        *([] if plan.share_net else ["--unshare-net"]),
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "tre-job",
    ]
    if plan.die_with_parent:
        bwrap.append("--die-with-parent")
    if plan.unset is None:
        bwrap.append("--clearenv")
    else:
        for name in plan.unset:
            bwrap += ["--unsetenv", name]
    bwrap += system_binds()
    for parent in parents_to_make(plan.host_binds):
        if parent != Path("/etc"):
            bwrap += ["--perms", "0755", "--dir", str(parent)]
    for folder in plan.host_binds:
        bwrap += ["--ro-bind", str(folder), str(folder)]
    bwrap += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(SHM_BYTES),
        "--tmpfs",
        "/dev/shm",  # noqa: S108 - the sandbox's own, for multiprocessing's semaphores
        "--perms",
        "1777",
        "--size",
        str(TMP_BYTES),
        "--tmpfs",
        SANDBOX_TMP,
    ]
    # The runtime after the sandbox's own /tmp, /dev and /proc: bubblewrap mounts in
    # order, so a runtime under /tmp (a checkout there) would be hidden by the tmpfs.
    # Missing parents would be 0700 root, which the job user could not pass: 0755.
    for parent in parents_to_make(plan.runtime):
        bwrap += ["--perms", "0755", "--dir", str(parent)]
    for folder in plan.runtime:
        bwrap += ["--ro-bind", str(folder), str(folder)]
    for folder in plan.hide:
        bwrap += ["--tmpfs", str(folder)]
    bwrap += [
        "--perms",
        "0755",
        "--dir",
        str(SANDBOX_JOB),
        "--ro-bind",
        str(plan.job_dir / "input.json"),
        str(SANDBOX_JOB / "input.json"),
    ]
    if (plan.job_dir / "code").is_dir():
        bwrap += ["--ro-bind", str(plan.job_dir / "code"), str(SANDBOX_JOB / "code")]
    for name in plan.extra:
        bwrap += ["--ro-bind", str(plan.job_dir / name), str(SANDBOX_JOB / name)]
    if plan.handover is not None:
        bwrap += ["--ro-bind", str(plan.handover), str(SANDBOX_HANDOVER)]
    bwrap += ["--bind", str(plan.out_dir), str(SANDBOX_OUT)]
    for host, inside in plan.data:
        for parent in parents_to_make((SANDBOX_DATA / inside,)):
            bwrap += ["--perms", "0755", "--dir", str(parent)]
        bwrap += ["--ro-bind", str(host), str(SANDBOX_DATA / inside)]
    if plan.key_socket is not None:
        bwrap += ["--perms", "0755", "--dir", str(SANDBOX_KEYS.parent)]
        bwrap += ["--bind", str(plan.key_socket), str(SANDBOX_KEYS)]
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": SANDBOX_TMP,
        "TMPDIR": SANDBOX_TMP,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        **plan.environment,
    }
    if plan.cluster == "slurm-runner":  # each task's scratch, inside its private /tmp
        environment["TRE_JOB_SCRATCH"] = str(SANDBOX_SCRATCH)
    for name, value in sorted(environment.items()):
        bwrap += ["--setenv", name, value]
    if plan.unprivileged:
        bwrap += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        bwrap += ["--chdir", str(SANDBOX_OUT), "--"]
        drop = []
    else:
        bwrap += ["--chdir", str(SANDBOX_OUT), "--cap-add", "CAP_SETUID,CAP_SETGID", "--"]
        drop = drop_to(plan.uid, plan.gid, plan.groups)
    launch = list(plan.program) or [
        plan.python,
        "-m",
        "slurm.launch",
        str(SANDBOX_JOB),
        "--out",
        str(SANDBOX_OUT),
        "--scratch",
        str(SANDBOX_SCRATCH),
        "--cluster",
        plan.cluster,
    ]
    if not plan.program and plan.phase != "all":
        launch += ["--phase", plan.phase]
        if plan.handover is not None:
            launch += ["--handover", str(SANDBOX_HANDOVER)]
    joined = [*limits, *bwrap, *drop, *launch]
    if not plan.cgroups:
        return joined
    # Join the job's cgroups first, so every process it ever starts is counted there.
    tasks = [str(g / "cgroup.procs") for g in plan.cgroups]
    # Another host has no `tre` cgroup folder at all: skip. Here a job's own folder can be
    # gone only because the job was cancelled: then the task must not start (exit 70).
    absent = '[ -d "${f%/*/*}" ] || continue; ' if plan.cgroups_here_only else ""
    script = f'for f in "$@"; do [ "$f" = -- ] && break; {absent}echo $$ > "$f" || exit 70; done; '
    script += 'while [ "$1" != -- ]; do shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *tasks, "--", *joined]


def environment_of(job_environment: dict[str, str]) -> dict[str, str]:
    """The host variables a job keeps, with the job's own settings over them."""
    kept = {k: v for k, v in os.environ.items() if k.startswith(KEEP_ENV)}
    return {**kept, **job_environment}


def unset_for_slurm() -> tuple[str, ...]:
    """The service's variables an allocation would inherit (sbatch exports them), which
    its sandboxed tasks must not see; Slurm's own (the task's rank) are set on the node."""
    return tuple(sorted(k for k in os.environ if not k.startswith((*KEEP_ENV, "SLURM"))))
