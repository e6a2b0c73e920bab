"""The key service's own sandbox: what it is shown when it runs as `tre-keys`.

Why a sandbox for trusted code: the key service runs tre's Python as its own OS user,
and that user must reach the runtime wherever an admin installed it, a checkout in
root's 0700 home folder included. bubblewrap (as for jobs, slurm/sandbox.py) binds the
runtime read-only at its own path, with the folders above it made 0755, so tre-keys
passes through to it and sees nothing else of those folders. The same list keeps the
service, which holds every master key, from the rest of the host:

    /usr, /bin, /lib..., a few files of /etc    the system, read-only
    the Python runtime                           read-only (interpreter, venv, tre)
    /run/tre/<home tag>/                         its socket folder (read-write)
    the HSM's configuration and token folder     pkcs11 only (see `hsm_paths`)
    /tmp                                         a private tmpfs

The key store and the service's state are not bound: they are handed over as open
folders (`--keys-fd`, `--state-fd`), as is the HSM's PIN file. It keeps the host's pid
namespace (its pid file names it to `tre keys service stop`) and, with an HSM, the
host's network (a network HSM's client needs it); with local keys it has no network.

`command()` is a pure function, so the exact command is tested without running it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from slurm import sandbox

#: SoftHSM's configuration when SOFTHSM2_CONF is not set (Debian's softhsm2).
SOFTHSM_DEFAULT_CONF = Path("/etc/softhsm/softhsm2.conf")
_TOKENDIR = re.compile(r"^\s*directories\.tokendir\s*=\s*(\S.*?)\s*$", re.MULTILINE)
TMP_BYTES = 64 << 20


@dataclass(frozen=True)
class Plan:
    """Everything the key service's sandbox is made of."""

    command: tuple[str, ...]  # python -m tre.keyservice ...
    socket_folder: Path
    uid: int
    gid: int
    runtime: tuple[Path, ...]
    hide: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()  # the HSM's configuration files
    writable: tuple[Path, ...] = ()  # the HSM's token folders
    network: bool = False


def hsm_paths(
    kms: str, extra: tuple[str, ...] = (), environ: Mapping[str, str] | None = None
) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """(read-only files, writable folders) the HSM's library needs: SoftHSM's
    configuration (SOFTHSM2_CONF, else Debian's default) and the token folder it names,
    and the folders a home names for another HSM's client (`hsm_paths` in tre.yaml)."""
    if kms != "pkcs11":
        return (), ()
    environ = os.environ if environ is None else environ
    read_only: list[Path] = []
    writable = [Path(p) for p in extra]
    conf = Path(environ.get("SOFTHSM2_CONF") or SOFTHSM_DEFAULT_CONF)
    if conf.is_file():
        read_only.append(conf.resolve())
        found = _TOKENDIR.search(conf.read_text(errors="replace"))
        if found:
            writable.append(Path(found.group(1)))
    return tuple(read_only), tuple(p.resolve() for p in writable if p.exists())


def command(plan: Plan) -> list[str]:
    """The command that runs `plan.command` in the key service's sandbox, as its user."""
    args = [
        "bwrap",
        *([] if plan.network else ["--unshare-net"]),
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "tre-keys",
        *sandbox.system_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(TMP_BYTES),
        "--tmpfs",
        "/tmp",  # noqa: S108 - its own private tmpfs
    ]
    # After /tmp, so a runtime or token folder under /tmp is not hidden by it.
    shown = (*plan.runtime, *plan.read_only, *plan.writable, plan.socket_folder)
    for parent in sandbox.parents_to_make(shown):
        args += ["--perms", "0755", "--dir", str(parent)]
    for folder in plan.runtime:
        args += ["--ro-bind", str(folder), str(folder)]
    for folder in plan.hide:
        args += ["--tmpfs", str(folder)]
    for path in plan.read_only:
        args += ["--ro-bind", str(path), str(path)]
    for path in (*plan.writable, plan.socket_folder):
        args += ["--bind", str(path), str(path)]
    args += ["--chdir", "/", "--cap-add", "CAP_SETUID,CAP_SETGID", "--"]
    return [*args, *sandbox.drop_to(plan.uid, plan.gid), *plan.command]
