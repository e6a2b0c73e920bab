"""Master keys in a hardware security module, through PKCS#11 (tested with SoftHSM 2).

Each version of a master key is an AES-256 secret key object on the token, created
there, sensitive and not extractable, labelled `tre:<key id>:v<version>` (its CKA_ID is
the key id). Wrapping is AES-GCM inside the HSM, with the key id and version as the
associated data, in the same text form as the local store's. Grants are signed with a
generic secret key `tre:tre.grant-signing:v<n>` (CKM_SHA256_HMAC), also made on the token,
and so is the audit log's chain keyed (`tre:tre.audit-chain:v1`, its handle cached: it
MACs every event).
Key bytes never leave the HSM; this process sees wrapped text and data keys only.

Settings (HomeConfig, `tre keys configure --kms pkcs11`): the PKCS#11 module (for
SoftHSM, /usr/lib/softhsm/libsofthsm2.so), the token's label, and a 0600 file holding
the user PIN. One session per process, opened on first use and shared by its threads
under a lock (PKCS#11 sessions are not safe to use from two threads at once).
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PKCS11Error
from pkcs11.mechanisms import GCMParams

from tre.keys.keystore import KeyStoreError, check_key_id
from tre.keys.masterkeys import (
    AUDIT_KEY,
    HMAC_KEYS,
    NONCE_BYTES,
    SIGNING_KEY,
    KmsSettings,
    MasterKeys,
)

__all__ = ["Pkcs11MasterKeys"]

_PREFIX = "tre:"
_T = TypeVar("_T")


def _label(key_id: str, version: int) -> str:
    return f"{_PREFIX}{key_id}:v{version}"


def _parse(label: str) -> tuple[str, int] | None:
    if not label.startswith(_PREFIX):
        return None
    key_id, _, number = label[len(_PREFIX) :].rpartition(":v")
    return (key_id, int(number)) if key_id and number.isdigit() else None


def read_pin(path: str) -> str:
    """The user PIN from a 0600 file; KeyStoreError naming the file (never the PIN)."""
    if not path:
        raise KeyStoreError(
            "the PKCS#11 key store has no PIN file configured",
            fix="tre keys configure --kms pkcs11 --pin-file FILE (a 0600 file with the PIN)",
        )
    try:
        if path.startswith("fd:"):  # handed over open by the TRE (the key service's case)
            fd = os.dup(int(path[3:]))
            os.lseek(fd, 0, os.SEEK_SET)
        else:
            fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError) as exc:
        raise KeyStoreError(
            f"the PKCS#11 PIN file {path} cannot be read: "
            f"{getattr(exc, 'strerror', None) or type(exc).__name__}",
            fix="create it (chmod 600) or point --pin-file at it",
        ) from exc
    with os.fdopen(fd) as handle:
        mode = os.fstat(handle.fileno()).st_mode
        pin = handle.read().strip()
    if stat.S_IMODE(mode) & 0o077:
        raise KeyStoreError(
            f"the PKCS#11 PIN file {path} has mode {stat.S_IMODE(mode):04o}, which lets "
            "other users read it",
            fix=f"run 'chmod 600 {path}' and change the PIN if others may have read it",
        )
    if not pin:
        raise KeyStoreError(f"the PKCS#11 PIN file {path} is empty", fix="write the PIN in it")
    return pin


class Pkcs11MasterKeys(MasterKeys):
    """Master keys on a PKCS#11 token."""

    kind = "pkcs11"

    def __init__(self, settings: KmsSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._session: Any = None
        self._pid = 0
        self._audit_key: Any = None  # the audit key's handle in the current session

    def __repr__(self) -> str:
        return f"Pkcs11MasterKeys(token={self.settings.pkcs11_token!r})"

    # -- the session ---------------------------------------------------------------------

    def _open_session(self) -> Any:
        module, label = self.settings.pkcs11_module, self.settings.pkcs11_token
        try:
            lib = pkcs11.lib(module)
        except (RuntimeError, OSError, PKCS11Error) as exc:
            raise KeyStoreError(
                f"the PKCS#11 module {module!r} cannot be loaded",
                reasons=[str(exc) or type(exc).__name__],
                fix="install the HSM's PKCS#11 library (for SoftHSM: apt-get install "
                "softhsm2) and give its path with tre keys configure --module",
            ) from exc
        try:
            token = lib.get_token(token_label=label)
        except PKCS11Error as exc:
            raise KeyStoreError(
                f"no PKCS#11 token labelled {label!r} is reachable through {module}",
                fix="initialise it (SoftHSM: softhsm2-util --init-token --free --label "
                f"{label} ...), check SOFTHSM2_CONF, or correct --token",
            ) from exc
        pin = read_pin(self.settings.pkcs11_pin_file)
        try:
            return token.open(user_pin=pin, rw=True)
        except PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot log in to the PKCS#11 token {label!r}: {type(exc).__name__}",
                fix=f"check the PIN in {self.settings.pkcs11_pin_file}",
            ) from exc

    @contextmanager
    def _use(self) -> Iterator[Any]:
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                self._session = self._open_session()  # a forked child needs its own
                self._pid = os.getpid()
                self._audit_key = None
            yield self._session

    def close(self) -> None:
        """Close this process's session."""
        with self._lock:
            if self._session is not None and self._pid == os.getpid():
                with contextlib.suppress(PKCS11Error):  # a broken session: nothing to do
                    self._session.close()
            self._session = None
            self._audit_key = None

    def _call(self, what: str, action: Callable[[Any], _T]) -> _T:
        with self._use() as session:
            try:
                return action(session)
            except PKCS11Error as exc:
                raise KeyStoreError(
                    f"the HSM refused to {what}: {type(exc).__name__}",
                    fix="check the token is present and logged in, and that its keys are "
                    "the ones the data was written with",
                ) from exc

    # -- MasterKeys ---------------------------------------------------------------------

    def _all(self) -> dict[str, list[int]]:
        def scan(session: Any) -> dict[str, list[int]]:
            found: dict[str, list[int]] = {}
            for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
                parsed = _parse(obj.label or "")
                if parsed is not None:
                    found.setdefault(parsed[0], []).append(parsed[1])
            return {k: sorted(v) for k, v in found.items()}

        return self._call("list its keys", scan)

    def key_ids(self) -> list[str]:
        return sorted(k for k in self._all() if k not in HMAC_KEYS)

    def versions(self, key_id: str) -> list[int]:
        return self._all().get(check_key_id(key_id), [])

    def _key(self, session: Any, key_id: str, version: int) -> Any:
        found = list(session.get_objects({Attribute.LABEL: _label(key_id, version)}))
        if not found:
            raise KeyStoreError(
                f"version {version} of master key {key_id!r} is not on the HSM token "
                f"{self.settings.pkcs11_token!r}",
                fix="restore the key on the token from the HSM's backup",
            )
        return found[0]

    def _create_version(self, key_id: str, version: int) -> bool:
        label = _label(key_id, version)
        signing = key_id in HMAC_KEYS

        def create(session: Any) -> bool:
            if list(session.get_objects({Attribute.LABEL: label})):
                return False
            session.generate_key(
                KeyType.GENERIC_SECRET if signing else KeyType.AES,
                256,
                label=label,
                id=key_id.encode(),
                store=True,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: not signing,
                    Attribute.DECRYPT: not signing,
                    Attribute.SIGN: signing,
                    Attribute.VERIFY: signing,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                },
            )
            return True

        return self._call(f"create version {version} of {key_id!r}", create)

    def _destroy_version(self, key_id: str, version: int) -> None:
        self._call(
            f"destroy version {version} of {key_id!r}",
            lambda session: self._key(session, key_id, version).destroy(),
        )
        if key_id == AUDIT_KEY:
            self._audit_key = None

    def _seal(self, key_id: str, version: int, data: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        params = GCMParams(nonce, f"{key_id}#v{version}".encode(), 128)

        def encrypt(session: Any) -> bytes:
            key = self._key(session, key_id, version)
            return bytes(key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))

        sealed = self._call(f"wrap a key with {key_id!r}", encrypt)
        return base64.b64encode(nonce + sealed).decode("ascii")

    def _open(self, key_id: str, version: int, sealed: str) -> bytes:
        try:
            raw = base64.b64decode(sealed, validate=True)
        except ValueError as exc:
            raise KeyStoreError(
                f"a key wrapped with {key_id!r} is damaged", fix="restore the key material"
            ) from exc
        params = GCMParams(raw[:NONCE_BYTES], f"{key_id}#v{version}".encode(), 128)

        def decrypt(session: Any) -> bytes:
            key = self._key(session, key_id, version)
            try:
                return bytes(
                    key.decrypt(
                        raw[NONCE_BYTES:], mechanism=Mechanism.AES_GCM, mechanism_param=params
                    )
                )
            except PKCS11Error as exc:
                raise KeyStoreError(
                    f"a key wrapped with version {version} of master key {key_id!r} cannot "
                    "be unwrapped: the HSM holds a different key, or the file is damaged",
                    fix="restore the data file's key material (or the HSM's key) from backup",
                ) from exc

        return self._call(f"unwrap a key with {key_id!r}", decrypt)

    def _mac(self, version: int, data: bytes, key_id: str = SIGNING_KEY) -> bytes:
        audit = key_id == AUDIT_KEY

        def mac(session: Any) -> bytes:
            if not audit:
                key = self._key(session, key_id, version)
            else:  # found once per session: a search on the token per event is slow
                if self._audit_key is None:
                    self._audit_key = self._key(session, key_id, version)
                key = self._audit_key
            return bytes(key.sign(data, mechanism=Mechanism.SHA256_HMAC))

        return self._call("key the audit log" if audit else "sign a key grant", mac)


def settings_for(module: str, token: str, pin_file: Path, keys_root: Path) -> KmsSettings:
    """KmsSettings for a PKCS#11 token."""
    return KmsSettings(
        kind="pkcs11",
        keys_root=str(Path(keys_root).absolute()),
        pkcs11_module=str(module),
        pkcs11_token=token,
        pkcs11_pin_file=str(Path(pin_file).absolute()),
    )
