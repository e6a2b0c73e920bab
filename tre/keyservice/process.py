"""Running the key service: where its socket is, starting it as its own user, stopping it.

    TRE_HOME/keys/                      the local key store (owned by the key service's user)
    TRE_HOME/keyservice/                its state: a lock, its pid and its own log
    /run/tre/<home tag>/keys.sock       its socket (the folder is the key service user's, 0700;
                                        a job sees only the socket, bound into its sandbox)

On one machine `tre run` and `tre serve --with-dispatcher` start it (`ensure_running`),
and any command that needs keys starts it if it is not up. In a deployment it runs as
a systemd unit (docs/keys.md). When tre runs as root and the OS user `tre-keys`
exists, the service runs as that user, in a bubblewrap sandbox of its own
(tre/keyservice/sandbox.py: it reaches tre's runtime wherever it is installed, a checkout
in root's home folder too); the key store is handed to it first.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tre.errors import PlatformError
from tre.home import Home
from tre.keys import keyclient
from tre.keys.keyclient import KeyServiceBusy, KeyServiceDown, ServiceMasterKeys
from tre.keyservice.sandbox import Plan, hsm_paths
from tre.keyservice.sandbox import command as sandbox_command
from tre.runtime import runtime_paths

log = logging.getLogger("tre.keyservice")

KEYS_USER = "tre-keys"
START_TIMEOUT = 20.0
#: A key service tre started itself stops after this long unused (a systemd unit's
#: runs for good); the next command that needs it starts it again.
IDLE_EXIT = 900.0


def state_dir(home: Home) -> Path:
    return home.root / "keyservice"


def service_user() -> pwd.struct_passwd | None:
    """The key service's own OS user, when tre can run it as that user (root only)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(KEYS_USER)
    except KeyError:
        return None


def is_running(home: Home) -> bool:
    try:
        ServiceMasterKeys(str(home.key_socket)).ping()
    except KeyServiceBusy:
        return True  # it runs, however slowly
    except KeyServiceDown:
        return False
    return True


def service_pid(home: Home) -> int | None:
    """The process id of the key service answering for `home`, or None if none answers
    (a job's outcome asks whether the one it began with went away: tre/service/judging.py)."""
    try:
        answer = ServiceMasterKeys(str(home.key_socket)).ping()
    except (KeyServiceDown, KeyServiceBusy):
        return None
    pid = answer.get("pid")
    return pid if isinstance(pid, int) else None


def _hand_over(home: Home, user: pwd.struct_passwd) -> None:
    """Give the key store and the service's state to its user, nobody else (the HSM's
    PIN file is handed over open, so it stays the TRE's)."""
    for top in (home.keys, state_dir(home)):
        top.mkdir(mode=0o700, exist_ok=True)
        for folder, dirs, files in os.walk(top):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(folder, name), user.pw_uid, user.pw_gid)
            os.chown(folder, user.pw_uid, user.pw_gid)
        os.chmod(top, 0o700)


def ensure_running(
    home: Home, sock: Path | None = None, state: Path | None = None
) -> ServiceMasterKeys:
    """The key service of `home`, started if it is not answering."""
    client = ServiceMasterKeys(str(sock or home.key_socket))
    try:
        answer = client.ping()
        if _serves(home, answer):
            return client
        _stop_stale(client, answer)
    except KeyServiceBusy:
        raise  # running, but stuck: never start a second one beside it
    except KeyServiceDown:
        pass
    process = start(home, sock, state)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            client.ping()
            return client
        except KeyServiceDown:
            time.sleep(0.05)
    try:  # another command may have started one at the same moment: that one is fine
        client.ping()
        return client
    except KeyServiceDown:
        pass
    log_file = (state or state_dir(home)) / "keyservice.log"
    tail = log_file.read_text(errors="replace").splitlines()[-5:] if log_file.exists() else []
    raise PlatformError(
        f"the key service of {home.root} did not start within {START_TIMEOUT:.0f}s",
        reasons=tail,
        fix=f"see {log_file}",
    )


def _serves(home: Home, answer: dict[str, object]) -> bool:
    """Whether the service that answered serves this home's key store (not one left
    over from a deleted home at the same path, about to stop by itself)."""
    store = answer.get("store")
    if store is None:
        return True  # an older service: it cannot say, so take its word
    try:
        info = home.keys.stat()
    except OSError:
        return True
    return store == f"{info.st_dev}:{info.st_ino}"


def _stop_stale(client: ServiceMasterKeys, answer: dict[str, object]) -> None:
    """Stop a leftover service of a deleted home, and wait until its socket is free."""
    pid = answer.get("pid")
    if isinstance(pid, int):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if f"--socket={client.socket_path}".encode() in command.split(b"\0"):
                os.kill(pid, 15)
        except OSError:
            pass
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            client.ping()
        except KeyServiceDown:
            return
        except KeyServiceBusy:
            pass
        time.sleep(0.05)


def next_instance(home: Home) -> tuple[Path, Path]:
    """(socket, state folder) of a second key service, run beside the home's own while
    its key system changes (`tre keys configure`)."""
    return home.key_socket.with_name("keys.next.sock"), state_dir(home) / "next"


def start(
    home: Home,
    sock: Path | None = None,
    state: Path | None = None,
    *,
    idle_exit: float = IDLE_EXIT,
    log_to_stdout: bool = False,
) -> subprocess.Popen[bytes]:
    """Start the key service in the background (as `tre-keys` when tre runs as root)."""
    state_dir(home).mkdir(mode=0o700, exist_ok=True)
    state = state or state_dir(home)
    state.mkdir(mode=0o700, exist_ok=True)
    sock = sock or home.key_socket
    sock.parent.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    sweep_empty_socket_folders(sock.parent.parent)
    sock.parent.mkdir(mode=0o700, exist_ok=True)
    user = service_user()
    sandboxed = user is not None and shutil.which("bwrap") is not None
    if user is not None and not sandboxed and (why := _unreachable_code(user)):
        raise PlatformError(
            f"the key service runs as {user.pw_name}, which cannot reach tre's code: {why}",
            fix="install tre where every user may enter its folders (e.g. /opt/tre or /srv), "
            "or let others pass through the folder named (chmod o+x on it); "
            "docs/operations.md, 'When jobs do not start'",
        )
    config = home.config
    fds = [
        os.open(home.keys, os.O_RDONLY | os.O_DIRECTORY),
        os.open(state, os.O_RDONLY | os.O_DIRECTORY),
    ]
    command = [
        sys.executable,
        "-m",
        "tre.keyservice",
        f"--keys-fd={fds[0]}",
        f"--state-fd={fds[1]}",
        f"--socket={sock}",
        f"--kms={config.kms}",
        f"--admin-uid={home.root.stat().st_uid}",
        f"--idle-exit={idle_exit}",
    ]
    if config.kms == "pkcs11":
        command += [
            f"--pkcs11-module={config.pkcs11_module or ''}",
            f"--pkcs11-token={config.pkcs11_token or ''}",
        ]
        if config.pkcs11_pin_file:
            fds.append(os.open(config.pkcs11_pin_file, os.O_RDONLY))
            command.append(f"--pkcs11-pin-fd={fds[-1]}")
    if user is not None:
        _hand_over(home, user)
        os.chown(sock.parent, user.pw_uid, user.pw_gid)
        if sandboxed:
            command = _sandboxed(home, command, sock.parent, user)
        else:  # no bubblewrap: as its user, on the host (its code must be reachable)
            command = [
                "setpriv",
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--no-new-privs",
                "--",
                *command,
            ]
    try:
        with (state / "keyservice.log").open("ab") as log_file:
            out = None if log_to_stdout else log_file
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=not log_to_stdout,  # in the background it outlives us
                cwd="/",
                pass_fds=fds,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
    finally:
        for fd in fds:
            os.close(fd)


def _sandboxed(
    home: Home, command: list[str], socket_folder: Path, user: pwd.struct_passwd
) -> list[str]:
    """`command` in the key service's own sandbox, as `user` (tre/keyservice/sandbox.py):
    it reaches tre's runtime wherever it is installed, and little else of the host."""
    runtime, hide = runtime_paths()
    config = home.config
    read_only, writable = hsm_paths(config.kms, tuple(config.pkcs11_paths))
    plan = Plan(
        command=tuple(command),
        socket_folder=socket_folder,
        uid=user.pw_uid,
        gid=user.pw_gid,
        runtime=runtime,
        hide=hide,
        read_only=read_only,
        writable=writable,
        network=config.kms == "pkcs11",
    )
    return sandbox_command(plan)


#: A socket folder empty this long belongs to no key service: one being started binds
#: its socket within a second of making its folder.
STALE_FOLDER_SECONDS = 600.0


def sweep_empty_socket_folders(parent: Path, older_than: float = STALE_FOLDER_SECONDS) -> int:
    """Remove the socket folders of key services that ended (each removes its socket as
    it exits, but cannot remove its folder): empty, and untouched for `older_than`
    seconds. Only empty folders go (rmdir), so a running service's never does. How many
    went."""
    removed = 0
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.rmdir(entry.path)
                removed += 1
        except OSError:
            continue  # not empty, or gone already
    return removed


def stop(
    home: Home, timeout: float = 10.0, sock: Path | None = None, state: Path | None = None
) -> bool:
    """Stop the key service of `home`; True if one was running."""
    sock = sock or home.key_socket
    pid_file = (state or state_dir(home)) / "pid"
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    if f"--socket={sock}".encode() not in command:
        return False  # the pid was reused by another process: never signal it
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie, ended but not yet reaped by us, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Lock:
    """One key service per home: an flock on keyservice/lock, held while it runs."""

    def __init__(self, state: Path) -> None:
        self.path = state / "lock"

    def __enter__(self) -> Lock:
        self._handle = self.path.open("a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise PlatformError(
                "a key service is already running for this home",
                fix="use it; stop it first to start another",
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def _start_for(client: ServiceMasterKeys) -> None:
    """Start the key service a TRE-side client found down (its home is its keys' parent)."""
    home = Home.open(Path(client.keys_root).parent)
    if home.config.isolation == "sandbox" and str(home.key_socket) == client.socket_path:
        ensure_running(home)


keyclient.set_starter(_start_for)


def _unreachable_code(user: pwd.struct_passwd, targets: tuple[Path, ...] = ()) -> str:
    """Why `user` (no other groups) cannot reach the interpreter's venv and tre's own
    package on this host, folder by folder ('' if it can): the key service runs outside
    any sandbox, so every folder above them counts (root's 0700 home folder, say)."""
    package = Path(__file__).resolve().parents[1]  # tre's own folder, without importing it
    for target in targets or (Path(sys.prefix), package):
        for folder in [*reversed(target.parents), target]:
            try:
                info = folder.stat()
            except OSError:
                continue
            if info.st_uid == user.pw_uid:
                bits = 0o100
            elif info.st_gid == user.pw_gid:
                bits = 0o010
            else:
                bits = 0o001
            if not info.st_mode & bits:
                return (
                    f"the user uid {user.pw_uid} cannot enter {folder} "
                    f"(mode {info.st_mode & 0o7777:04o}, owner uid {info.st_uid})"
                )
    return ""
