"""A SoftHSM token of a test's own, initialised with softhsm2-util. Used by the keys'
fixtures (`softhsm`), the audit tests and the HSM end-to-end tests (which import
`start_token`).

SoftHSM reads its configuration once per process, when the library is first
initialised, so every test in a run shares one configuration and token folder (a
temporary folder, removed at exit); each test gets a token of its own in it, with a
unique label, and the library is re-initialised so it sees the new token.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest

from tre.keys import keysystems

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"
_CONF = "SOFTHSM2_CONF"


@dataclass(frozen=True)
class Token:
    """What `tre keys configure --kms pkcs11` needs to use the token."""

    module: str
    label: str
    pin_file: Path


def _configure_once() -> None:
    """Point SOFTHSM2_CONF (this process and its children) at a private token folder."""
    if os.environ.get(_CONF, "").startswith(tempfile.gettempdir() + "/tre-softhsm-"):
        return
    folder = Path(tempfile.mkdtemp(prefix="tre-softhsm-"))
    atexit.register(shutil.rmtree, folder, True)
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ[_CONF] = str(conf)


def _hand_to_key_service() -> None:
    """In a sandboxed home the HSM is the key service's, which runs as `tre-keys`: give
    it the token folder, as a deployment does (root, these tests, can still use it)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("tre-keys")
    except KeyError:
        return
    folder = Path(os.environ[_CONF]).parent
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, user.pw_uid, user.pw_gid)


def start_token(folder: Path) -> Token:
    """Initialise a fresh token; its PIN file goes in `folder`."""
    if shutil.which("softhsm2-util") is None or not Path(MODULE).exists():
        message = "SoftHSM is not installed (apt-get install softhsm2)"
        if os.environ.get("TRE_REQUIRE_ALL") == "1":
            pytest.fail(message + " (TRE_REQUIRE_ALL=1 turns this skip into a failure)")
        pytest.skip(message)
    _configure_once()
    label = f"tre-{secrets.token_hex(4)}"
    command = ["softhsm2-util", "--init-token", "--free", "--label", label]
    subprocess.run(
        [*command, "--pin", PIN, "--so-pin", "87654321"], check=True, capture_output=True
    )
    _hand_to_key_service()
    # Close sessions on earlier tokens, then have the library look for tokens again.
    keysystems.forget_opened()
    pkcs11.lib(MODULE).reinitialize()
    folder.mkdir(parents=True, exist_ok=True)
    pin = folder / "user.pin"
    pin.write_text(PIN + "\n")
    pin.chmod(0o600)
    return Token(MODULE, label, pin)
