"""Which key system a process uses: the one place that knows every implementation of
the `MasterKeys` contract (tre/keys/masterkeys.py imports none of them), and keeps
one instance per setting in this process (an HSM session is opened once).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tre.keys.masterkeys import SERVICE, KmsSettings, LocalMasterKeys, MasterKeys

__all__ = ["forget_opened", "open_master_keys"]

_lock = threading.Lock()
_opened: dict[KmsSettings, MasterKeys] = {}


def open_master_keys(settings: KmsSettings) -> MasterKeys:
    """This process's instance for `settings` (an HSM session is opened once)."""
    with _lock:
        found = _opened.get(settings)
        if found is not None:
            return found
    if settings.kind == SERVICE:
        from tre.keys.keyclient import GatewayTls, ServiceMasterKeys  # a job's only way

        tls = (
            GatewayTls(settings.tls_ca, settings.tls_cert, settings.tls_key)
            if settings.tls_cert
            else None
        )
        socket = settings.socket
        if settings.near_socket and os.path.exists(settings.near_socket):
            socket, tls = settings.near_socket, None
        made: MasterKeys = ServiceMasterKeys(socket, settings.keys_root, tls=tls)
    elif settings.kind == "pkcs11":
        from tre.keys.pkcs11keys import Pkcs11MasterKeys  # only hosts with an HSM need it

        made = Pkcs11MasterKeys(settings)
    else:
        made = LocalMasterKeys(Path(settings.keys_root))
    with _lock:
        return _opened.setdefault(settings, made)


def forget_opened() -> None:
    """Close and forget every instance (tests; and after a fork)."""
    with _lock:
        opened = list(_opened.values())
        _opened.clear()
    for keys in opened:
        close = getattr(keys, "close", None)
        if close is not None:
            close()
