"""The key service's own sandbox (tre/keyservice/sandbox.py): the command, and what a
running key service can see of the host."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tre.home import Home
from tre.keyservice import process
from tre.keyservice.sandbox import Plan, command, hsm_paths


def _plan(**changes: object) -> Plan:
    base = {
        "command": ("/opt/py/bin/python", "-m", "tre.keyservice", "--socket=/run/tre/a/k.sock"),
        "socket_folder": Path("/run/tre/a"),
        "uid": 995,
        "gid": 993,
        "runtime": (Path("/tmp/check out/.venv"), Path("/tmp/check out/tre")),
    }
    return Plan(**{**base, **changes})  # type: ignore[arg-type]


def test_the_runtime_is_bound_after_the_private_tmp_and_its_parents_made_passable():
    args = command(_plan())
    tmpfs = args.index("/tmp", args.index("--tmpfs"))
    venv = args.index("/tmp/check out/.venv")
    assert args[venv - 1] == "--ro-bind" and venv > tmpfs
    made = args.index("/tmp/check out")
    assert args[made - 3 : made] == ["--perms", "0755", "--dir"] and made > tmpfs
    socket = args.index("/run/tre/a")
    assert args[socket - 1] == "--bind"
    assert args.index("bwrap") < args.index("setpriv") < args.index("tre.keyservice")
    drop = args[args.index("setpriv") :]
    assert "--reuid=995" in drop and "--no-new-privs" in drop and "--bounding-set=-all" in drop


def test_local_keys_have_no_network_and_an_hsm_keeps_it():
    assert "--unshare-net" in command(_plan())
    assert "--unshare-net" not in command(_plan(network=True))
    # Its pid file names it to `stop`, so it stays in the host's pid namespace.
    assert "--unshare-pid" not in command(_plan())


def test_softhsms_configuration_and_token_folder_are_found(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"# tre\ndirectories.tokendir = {tokens}\nobjectstore.backend = file\n")
    extra = tmp_path / "client"
    extra.mkdir()
    read_only, writable = hsm_paths("pkcs11", (str(extra),), {"SOFTHSM2_CONF": str(conf)})
    assert read_only == (conf,)
    assert set(writable) == {tokens, extra}
    assert hsm_paths("local", (str(extra),), {"SOFTHSM2_CONF": str(conf)}) == ((), ())


def test_a_running_key_service_sees_the_runtime_and_nothing_else_of_the_host(home: Path):
    if process.service_user() is None:
        pytest.fail("the key service's sandbox needs root and the OS user tre-keys (make test)")
    tre_home = Home.open(home)
    process.ensure_running(tre_home)
    pid = int((process.state_dir(tre_home) / "pid").read_text())
    root = Path(f"/proc/{pid}/root")  # the process's own view of the file system
    assert (root / sys.executable.lstrip("/")).exists()
    assert (root / Path(process.__file__).relative_to("/")).exists()
    checkout = Path(__file__).resolve().parents[3]
    assert (checkout / ".git").exists() and not (root / checkout.relative_to("/") / ".git").exists()
    assert not (root / home.relative_to("/")).exists()  # TRE_HOME: only the fds it was handed
    assert (root / "run/tre").is_dir()
    # Root's home folder shows at most the way to a runtime kept in it (pyenv's, say).
    runtime = [Path(sys.base_prefix), Path(sys.prefix)]
    if (root / "root").exists():
        shown = {p.name for p in (root / "root").iterdir()}
        assert shown <= {
            p.relative_to("/root").parts[0] for p in runtime if p.is_relative_to("/root")
        }
    assert os.stat(f"/proc/{pid}").st_uid != 0


def test_a_service_left_over_from_a_deleted_home_at_the_same_path_is_replaced(
    home: Path, tmp_path: Path
):
    import shutil

    process.ensure_running(Home.open(home))
    kept = tmp_path / "kept"
    shutil.copytree(home, kept, ignore=shutil.ignore_patterns("pid", "lock"))
    shutil.rmtree(home)  # the old service stops by itself, but not at once
    shutil.copytree(kept, home)
    client = process.ensure_running(Home.open(home))
    info = (home / "keys").stat()
    assert client.ping()["store"] == f"{info.st_dev}:{info.st_ino}"
