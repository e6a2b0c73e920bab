"""Running the key gateway (tre/keyservice/gateway.py) beside a home's key service.

    TRE_HOME/tls/ca-cert.pem, ca-key.pem     the home's CA (tre/keys/tls_ca.py), the TRE's
    TRE_HOME/tls/gateway/                     the gateway's certificate, key and the CA
                                              certificate: its user's alone (0700)
    TRE_HOME/keyservice/gateway.pid, .log     which process it is, what it said

It runs as the key service's user (`tre-keys`), which the key service counts as a job,
never as the TRE, in the key service's sandbox (tre/keyservice/sandbox.py) with the
host's network, since it listens on the address compute nodes reach. Its TLS folder is
handed over open (`--tls-dir /proc/self/fd/N`), so it needs nothing else of the home,
and it stops by itself once that folder is deleted (a removed test or demo home).

`ensure_gateway` starts it when it is not answering at its address, as the dispatcher
does before it starts a job that reaches keys through it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from tre.errors import PlatformError
from tre.home import Home
from tre.keys.tls_ca import CA_CERT, ensure_ca, issue_server
from tre.keyservice.process import service_user, state_dir
from tre.keyservice.sandbox import Plan
from tre.keyservice.sandbox import command as sandbox_command
from tre.runtime import runtime_paths

__all__ = ["ensure_gateway", "gateway_running", "split_address", "stop_gateway", "tls_dir"]

GATEWAY_CERT = "gateway-cert.pem"
GATEWAY_KEY = "gateway-key.pem"
START_SECONDS = 10.0


def tls_dir(home: Home) -> Path:
    """The home's CA folder (TRE_HOME/tls)."""
    return home.root / "tls"


def split_address(address: str) -> tuple[str, int]:
    """HOST:PORT as (host, port); PlatformError naming the form if it is not one."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PlatformError(
            f"the key gateway's address {address!r} is not HOST:PORT",
            fix="set key_gateway in the site profile as an address and port, e.g. '10.77.0.1:7643'",
        )
    return host, int(port)


def ensure_gateway(home: Home, address: str) -> None:
    """Start the home's key gateway at `address` unless it already answers there."""
    host, port = split_address(address)
    if _pid(home) is not None:
        if _answers(host, port):
            return
        stop_gateway(home)
    elif _answers(host, port):
        raise PlatformError(
            f"another process already listens at {address}, where this home's key gateway should",
            fix="stop it (if it is another TRE home's key gateway: 'tre keys stop' in that "
            "home), or give this home's site profile another key_gateway port",
        )
    folder = _prepare(home, host)
    process = _start(home, address, folder)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers(host, port):
            return
        time.sleep(0.05)
    raise PlatformError(
        f"the key gateway did not start listening at {address}",
        reasons=[_last_lines(state_dir(home) / "gateway.log")],
        fix="check that this machine has that address (the service node's address on the "
        "compute network) and that the port is free; see TRE_HOME/keyservice/gateway.log",
    )


def gateway_running(home: Home) -> tuple[int, str] | None:
    """(pid, HOST:PORT) of the home's key gateway, if it runs."""
    pid = _pid(home)
    if pid is None:
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    listen = next((a.decode()[9:] for a in args if a.startswith(b"--listen=")), "")
    return pid, listen


def stop_gateway(home: Home, timeout: float = 10.0) -> bool:
    """Stop the home's key gateway; True if one was running."""
    pid = _pid(home)
    if pid is None:
        return False
    try:
        os.killpg(pid, 15)  # its sandbox and the gateway in it: one process group
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if _zombie(pid):
            break
        time.sleep(0.05)
    return True


def _prepare(home: Home, host: str) -> Path:
    """The gateway's own folder: its certificate for `host`, its key and the CA's
    certificate, owned by its user when it has one."""
    ca = tls_dir(home)
    ensure_ca(ca)
    folder = ca / "gateway"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(mode=0o700)
    issued = issue_server(ca, [host])
    for name, data in (
        (GATEWAY_CERT, issued.cert),
        (GATEWAY_KEY, issued.key),
        (CA_CERT, (ca / CA_CERT).read_bytes()),
    ):
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    user = service_user()
    if user is not None:
        for path in (folder, *folder.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
    return folder


def _start(home: Home, address: str, folder: Path) -> subprocess.Popen[bytes]:
    state = state_dir(home)
    state.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    command = [
        sys.executable,
        "-m",
        "tre.keyservice.gateway",
        f"--listen={address}",
        f"--upstream={home.key_socket}",
        f"--tls-dir=/proc/self/fd/{fd}",
    ]
    user = service_user()
    if user is not None and shutil.which("bwrap") is not None:
        runtime, hide = runtime_paths()
        command = sandbox_command(
            Plan(
                command=tuple(command),
                socket_folder=home.key_socket.parent,
                uid=user.pw_uid,
                gid=user.pw_gid,
                runtime=runtime,
                hide=hide,
                network=True,  # it listens where compute nodes reach it
            )
        )
    try:
        with (state / "gateway.log").open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # it outlives the command that started it
                cwd="/",
                pass_fds=[fd],
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
    finally:
        os.close(fd)
    (state / "gateway.pid").write_text(f"{process.pid}\n")
    return process


def _pid(home: Home) -> int | None:
    """The running gateway's pid, if the pid file names one that is this home's gateway
    (a reused pid is never taken for it)."""
    try:
        pid = int((state_dir(home) / "gateway.pid").read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    wanted = f"--upstream={home.key_socket}".encode()
    return pid if wanted in command.split(b"\0") and not _zombie(pid) else None


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return False
    return True


def _last_lines(path: Path, count: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return "it left no log"
    return " | ".join(line[:200] for line in lines) or "its log is empty"
