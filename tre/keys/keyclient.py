"""The key service's client: `MasterKeys` whose keys live in another process.

The key service (`tre.keyservice`) runs under its own OS user and is the only process
that holds the master keys, the grant-signing key and the HSM PIN. Everything else,
the TRE service and every job, reaches it over a Unix socket with this client:

- a job may only `authorise` its grant and `unwrap_with_grant`: the service checks the
  grant (signature, expiry, revocation, that it names the key) before every unwrap;
- the TRE service (the home's owner, or root) may also wrap, rotate, sign and revoke.
  The service tells the two apart by the peer's uid (SO_PEERCRED), never by what the
  caller says about itself.

The wire format is a 4-byte big-endian length and a JSON object, both ways. Bytes
travel base64. Errors come back as the class name of a tre error (from a fixed list)
with its message, reasons and fix, and are raised here as that class.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tre.errors import PermissionDenied, PlatformError, TreError
from tre.keys import grants as grants_module
from tre.keys.grants import Grant
from tre.keys.keystore import KeyStoreError
from tre.keys.masterkeys import SIGNING_KEY, KeyVersionError, MasterKeys

__all__ = [
    "GatewayTls",
    "KeyServiceDown",
    "ServiceMasterKeys",
    "b64",
    "recv_message",
    "send_message",
    "unb64",
]

MAX_MESSAGE = 1 << 20  # nothing the service says or hears is bigger than a few KiB
TLS_SCHEME = "tls://"
CONNECT_TIMEOUT = 10.0
#: A ping is answered by the service's event loop itself, at once however busy its
#: workers are: one that takes longer means a service that is alive but stuck.
PING_TIMEOUT = 5.0


class KeyServiceDown(PlatformError):
    """The key service does not answer on its socket."""


class KeyServiceBusy(PlatformError):
    """The key service took a connection but did not answer a ping in time: it runs, so
    another must never be started beside it."""


#: The errors that may cross the socket, by name. Anything else arrives as PlatformError.
ERRORS: dict[str, type[TreError]] = {
    cls.__name__: cls
    for cls in (
        PermissionDenied,
        PlatformError,
        KeyStoreError,
        KeyVersionError,
        grants_module.GrantError,
        grants_module.GrantInvalid,
        grants_module.GrantExpired,
        grants_module.GrantRevoked,
        grants_module.KeyNotGranted,
    )
}


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(text: object) -> bytes:
    return base64.b64decode(str(text), validate=True)


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 16))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None if the peer closed the connection between messages."""
    head = sock.recv(4)  # no MSG_WAITALL: a TLS socket takes no flags
    if not head:
        return None
    if len(head) < 4:
        head += _recv_exact(sock, 4 - len(head))
    (size,) = struct.unpack(">I", head)
    if size > MAX_MESSAGE:
        raise ConnectionError(f"a message of {size} bytes is too big")
    value = json.loads(_recv_exact(sock, size))
    if not isinstance(value, dict):
        raise ConnectionError("a message is not a JSON object")
    return value


def raise_remote(error: dict[str, Any]) -> None:
    """Raise the tre error the service sent back."""
    cls = ERRORS.get(str(error.get("type")), PlatformError)
    reasons = error.get("reasons") or []
    raise cls(
        str(error.get("message", "the key service refused")),
        reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
        fix=str(error["fix"]) if error.get("fix") else None,
    )


_starter: Callable[[ServiceMasterKeys], None] | None = None


def set_starter(starter: Callable[[ServiceMasterKeys], None] | None) -> None:
    """What the TRE does when its key service is not answering (start it): set by
    `tre.keyservice.process`, which jobs never import."""
    global _starter
    _starter = starter


@dataclass(frozen=True)
class GatewayTls:
    """What a job shows the key gateway (`tre.keyservice.gateway`), and trusts: the
    home's CA certificate, and the job's own client certificate and key (PEM files)."""

    ca: str
    cert: str
    key: str


class ServiceMasterKeys(MasterKeys):
    """Master keys held by the key service at `socket_path`; one connection per thread.

    `socket_path` is a Unix socket's path, or `tls://HOST:PORT`: the key gateway, for a
    job on another node, reached with mutual TLS (`tls` names the files)."""

    kind = "service"

    def __init__(
        self, socket_path: str, keys_root: str = "", tls: GatewayTls | None = None
    ) -> None:
        self.socket_path = socket_path
        self.keys_root = keys_root  # the TRE's side knows its home; a job's client does not
        self.tls = tls
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ServiceMasterKeys({self.socket_path!r})"

    # -- transport ------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        if self.socket_path.startswith(TLS_SCHEME):
            return self._connect_tls()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise KeyServiceDown(
                f"the key service does not answer at {self.socket_path} "
                f"({exc.strerror or type(exc).__name__})",
                fix="start it (tre keys serve, or the tre-keys systemd unit); tre run and "
                "tre serve --with-dispatcher start it themselves",
            ) from exc
        sock.settimeout(None)
        return sock

    def _connect_tls(self) -> socket.socket:
        """A connection to the key gateway: the gateway's certificate checked against the
        home's CA and the address, the job's own certificate shown."""
        if self.tls is None:
            raise KeyServiceDown(
                f"the key gateway {self.socket_path} needs the job's TLS certificate",
                fix="this is tre's bug: a job on another node must be given its certificate",
            )
        host, _, port = self.socket_path[len(TLS_SCHEME) :].rpartition(":")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_verify_locations(self.tls.ca)
        context.load_cert_chain(self.tls.cert, self.tls.key)
        try:
            raw = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT)
            sock = context.wrap_socket(raw, server_hostname=host)
        except (OSError, ValueError) as exc:
            raise KeyServiceDown(
                f"the key gateway does not answer at {self.socket_path} "
                f"({getattr(exc, 'strerror', None) or type(exc).__name__})",
                fix="check the gateway runs on the service node (tre keys status) and that "
                "the compute node's network lets it through to that port (docs/slurm.md)",
            ) from exc
        sock.settimeout(None)
        return sock

    def _socket(self) -> socket.socket:
        try:
            return self._open_socket()
        except KeyServiceDown:
            if _starter is None or not self.keys_root:
                raise
            _starter(self)  # the TRE starts its key service when it finds it down
            return self._open_socket()

    def _open_socket(self) -> socket.socket:
        # A forked child must never share its parent's connection (replies would cross).
        held = getattr(self._local, "sock", None)
        if held is not None and self._local.pid == os.getpid():
            return held
        self._local.sock = self._connect()
        self._local.pid = os.getpid()
        return self._local.sock

    def _drop(self) -> None:
        held = getattr(self._local, "sock", None)
        self._local.sock = None
        if held is not None:
            held.close()

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """One request; the reply's fields, or the tre error the service raised."""
        for attempt in (1, 2):  # a connection the service closed (it restarted) is redialled
            sock = self._socket()
            try:
                sock.settimeout(PING_TIMEOUT if op == "ping" else None)
                send_message(sock, {"op": op, **args})
                reply = recv_message(sock)
                if reply is None:
                    raise ConnectionError("the key service closed the connection")
            except TimeoutError as exc:
                self._drop()
                raise KeyServiceBusy(
                    f"the key service at {self.socket_path} took the connection but did "
                    f"not answer a ping within {PING_TIMEOUT:g}s",
                    fix="it is running but stuck: see its log (TRE_HOME/keyservice/"
                    "keyservice.log), and restart it with 'tre keys stop' if it stays so",
                ) from exc
            except (OSError, ConnectionError, ValueError) as exc:
                self._drop()
                if attempt == 2:
                    raise KeyServiceDown(
                        f"the key service at {self.socket_path} stopped answering",
                        reasons=[type(exc).__name__],
                        fix="check it is running (tre keys status); restart it if not",
                    ) from exc
                continue
            if "error" in reply:
                raise_remote(reply["error"])
            return reply
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._drop()

    # -- what a job may ask -----------------------------------------------------------

    def authorise(
        self, token: str, key_ids: Iterable[str], labels: dict[str, str] | None = None
    ) -> Grant:
        """The grant in `token` if the service finds it valid now and covering `key_ids`."""
        reply = self.call("authorise", token=token, keys=list(key_ids), labels=labels or {})
        claims = dict(reply["grant"])
        claims["keys"] = tuple(claims["keys"])
        return Grant(**claims)

    def unwrap_with_grant(self, token: str, key_id: str, wrapped: str) -> bytes:
        """Unwrap under the grant `token` (checked by the service at this very call)."""
        return unb64(self.call("unwrap", token=token, key=key_id, wrapped=wrapped)["data"])

    # -- what the TRE service may ask (refused for anyone else) -------------------------

    def key_ids(self) -> list[str]:
        return [str(k) for k in self.call("key_ids")["keys"]]

    def versions(self, key_id: str) -> list[int]:
        return [int(v) for v in self.call("versions", key=key_id)["versions"]]

    def ensure(self, key_id: str) -> bool:
        return bool(self.call("ensure", key=key_id)["created"])

    def rotate(self, key_id: str) -> int:
        return int(self.call("rotate", key=key_id)["version"])

    def destroy(self, key_id: str, version: int) -> None:
        self.call("destroy", key=key_id, version=version)

    def wrap(self, key_id: str, data: bytes) -> str:
        return str(self.call("wrap", key=key_id, data=b64(data))["wrapped"])

    def unwrap(self, key_id: str, wrapped: str) -> bytes:
        return unb64(self.call("unwrap_raw", key=key_id, wrapped=wrapped)["data"])

    def signing_version(self) -> int:
        return int(self.call("signing_version")["version"])

    def sign(self, data: bytes, version: int | None = None) -> bytes:
        return unb64(self.call("sign", data=b64(data), version=version)["signature"])

    def verify(self, data: bytes, signature: bytes, version: int = 1) -> bool:
        reply = self.call("verify", data=b64(data), signature=b64(signature), version=version)
        return bool(reply["valid"])

    def audit_mac(self, data: bytes) -> bytes:
        """The audit chain's HMAC of `data`, made by the service with a key it keeps."""
        return unb64(self.call("audit_mac", data=b64(data))["mac"])

    def retire_audit_key(self) -> None:
        self.call("retire_audit_key")

    def revoke(self, grant_id: str, reason: str) -> None:
        """Revoke a grant at the service: its next unwrap is refused."""
        self.call("revoke", grant=grant_id, reason=reason)

    def usage(self, grant_id: str) -> dict[str, Any]:
        """What the service did under one grant: unwraps per key, refusals (counts only)."""
        return dict(self.call("usage", grant=grant_id)["usage"])

    def drain_refusals(self) -> list[dict[str, Any]]:
        """Refused requests since the last call (for the audit log), oldest first."""
        return [dict(r) for r in self.call("drain_refusals")["refusals"]]

    def ping(self) -> dict[str, Any]:
        return self.call("ping")

    # The abstract primitives are the service's business; this client never has keys.
    def _create_version(self, key_id: str, version: int) -> bool:
        raise NotImplementedError

    def _destroy_version(self, key_id: str, version: int) -> None:
        raise NotImplementedError

    def _seal(self, key_id: str, version: int, data: bytes) -> str:
        raise NotImplementedError

    def _open(self, key_id: str, version: int, sealed: str) -> bytes:
        raise NotImplementedError

    def _mac(self, version: int, data: bytes, key_id: str = SIGNING_KEY) -> bytes:
        raise NotImplementedError
