"""Where master keys live: one small interface, one module per key-management system.

    MasterKeys            the interface the KMS glue (`tre.keys.kms`) and grants use
    ├── LocalMasterKeys   0600 files in TRE_HOME/keys (the embedded default), here
    └── Pkcs11MasterKeys  an HSM through PKCS#11 (tested with SoftHSM), in `pkcs11keys`

The interface is shaped after the transit engines of HashiCorp Vault and OpenBao, so
one of those is one more module: named keys with numbered versions; `wrap` always uses
the newest version and the wrapped text names the version it used, so `unwrap` needs
no bookkeeping; `rotate` adds a version; `destroy` removes an old one; `sign` and
`verify` are an HMAC with a key that never leaves the system (grants are signed with
it). The signing key has versions too: `sign` uses the newest, `verify` is told which
version signed (a grant says so), so rotating it ends no running job's grant.
`audit_mac` is an HMAC with another such key, the audit-chain key, made on first use and
never rotated: it keys the audit log's hash chain (`tre.audit`). Key
bytes never cross this interface outwards: callers get wrapped text, unwrapped data
keys and signatures, nothing else.

Wrapped keys written by the modules here are `v<version>:<base64(nonce|ciphertext|tag)>`,
AES-256-GCM with the key id and version as associated data, so a wrapped key cannot be
replayed under another key or version.

`KmsSettings` (plain, picklable data) says which system a home uses;
`tre.keys.keysystems.open_master_keys`
gives this process's one instance for it.

    PlatformError
    └── KeyStoreError      (tre.keys.keystore) a key or the store cannot be used
        └── KeyVersionError  a wrapped key names a version that is gone or malformed
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tre.errors import PlatformError
from tre.keys.keystore import KeyStoreError, LocalKeyStore, check_key_id

__all__ = [
    "AUDIT_KEY",
    "KINDS",
    "SIGNING_KEY",
    "KeyVersionError",
    "KmsSettings",
    "LocalMasterKeys",
    "MasterKeys",
    "version_of",
]

#: The key-management systems a home can use (HomeConfig.kms).
KINDS = ("local", "pkcs11")
#: A client of the key service (`tre.keys.keyclient`), which holds one of KINDS.
SERVICE = "service"
#: The key grants are signed with (an HMAC key, never a data key's wrapper).
SIGNING_KEY = "tre.grant-signing"
#: The key the audit log's hash chain is keyed with (HMAC; one version, never rotated).
AUDIT_KEY = "tre.audit-chain"
#: The audit key's only version (a new one would need a new chain scheme in tre.audit).
AUDIT_KEY_VERSION = 1
#: HMAC keys: never wrap data, never listed by `key_ids()`.
HMAC_KEYS = (SIGNING_KEY, AUDIT_KEY)
NONCE_BYTES = 12
_WRAPPED = re.compile(r"^v([1-9][0-9]{0,8}):(.+)$", re.DOTALL)


class KeyVersionError(KeyStoreError):
    """A wrapped key names a master key version that does not exist (any more)."""


@dataclass(frozen=True)
class KmsSettings:
    """Which key-management system holds the master keys, and how to reach it.

    `keys_root` is TRE_HOME/keys whatever the kind: the local store lives there, and so
    do revoked grants. The PKCS#11 PIN is read from `pkcs11_pin_file` when needed and
    never stored here, so these settings can travel to workers in a job's input.
    """

    kind: str
    keys_root: str
    pkcs11_module: str = ""
    pkcs11_token: str = ""
    pkcs11_pin_file: str = ""
    socket: str = ""  # kind "service": the key service's Unix socket, or tls://HOST:PORT
    # kind "service" through the key gateway (tls://): the CA, the job's certificate and
    # its key, as files the job can read (tre/keyservice/gateway.py)
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    #: Through the key gateway, the key service's own socket where a process has it
    #: instead (slurm-cluster: its engine and python steps on the service node; its
    #: workers on the compute nodes have only the gateway). Either way the key service
    #: checks the same grant.
    near_socket: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (*KINDS, SERVICE):
            raise PlatformError(
                f"key management {self.kind!r} is not one tre knows",
                fix=f"set kms to one of: {', '.join(KINDS)} (tre keys configure)",
            )

    @classmethod
    def local(cls, keys_root: Path) -> KmsSettings:
        """The embedded default: the local key store at `keys_root`."""
        return cls(kind="local", keys_root=str(Path(keys_root).absolute()))

    def as_conf(self) -> dict[str, str]:
        """As the string map pyarrow's KmsConnectionConfig carries."""
        return {f"kms.{k}": v for k, v in asdict(self).items()}

    @classmethod
    def service(cls, socket: str, keys_root: Path | str = "") -> KmsSettings:
        """A client of the key service listening at `socket` (no key material here)."""
        return cls(kind=SERVICE, keys_root=str(keys_root), socket=str(socket))

    @classmethod
    def from_conf(cls, conf: dict[str, str]) -> KmsSettings:
        """Back from `as_conf()`; PlatformError if it is not there."""
        values = {k.removeprefix("kms."): v for k, v in conf.items() if k.startswith("kms.")}
        if "kind" not in values or "keys_root" not in values:
            raise PlatformError(
                "the KMS connection does not say where the master keys are",
                fix="build it with tre.keys.kms (a bug in tre if you did)",
            )
        return cls(**values)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """As sorted (name, value) pairs: how a SecuredSource carries them."""
        return tuple(sorted(asdict(self).items()))

    def fingerprint(self) -> str:
        """A short stable digest of these settings (for cache keys and tokens)."""
        return hashlib.sha256(repr(self.pairs()).encode()).hexdigest()[:16]


class MasterKeys(ABC):
    """Named master keys with numbered versions, in some key-management system."""

    kind: str = ""

    @abstractmethod
    def key_ids(self) -> list[str]:
        """Every key id that has at least one version (the signing key excluded)."""

    @abstractmethod
    def versions(self, key_id: str) -> list[int]:
        """The versions of `key_id` that still exist, oldest first; [] if none."""

    @abstractmethod
    def _create_version(self, key_id: str, version: int) -> bool:
        """Make version `version` of `key_id` (random, never shown); False if it exists."""

    @abstractmethod
    def _destroy_version(self, key_id: str, version: int) -> None:
        """Remove version `version` of `key_id` for good."""

    @abstractmethod
    def _seal(self, key_id: str, version: int, data: bytes) -> str:
        """Encrypt `data` with one version (the wrapped text after 'v<n>:')."""

    @abstractmethod
    def _open(self, key_id: str, version: int, sealed: str) -> bytes:
        """Decrypt what `_seal` made; KeyStoreError if it does not authenticate."""

    @abstractmethod
    def _mac(self, version: int, data: bytes, key_id: str = SIGNING_KEY) -> bytes:
        """HMAC-SHA256 of `data` with version `version` of an HMAC key (one of HMAC_KEYS)."""

    def current(self, key_id: str) -> int | None:
        """The version `wrap` uses now, or None if the key does not exist."""
        found = self.versions(key_id)
        return found[-1] if found else None

    def ensure(self, key_id: str) -> bool:
        """Create `key_id` (version 1) unless it exists; True if it was created."""
        check_key_id(key_id)
        if self.versions(key_id):
            return False
        return self._create_version(key_id, 1)  # False: another process made it meanwhile

    def rotate(self, key_id: str) -> int:
        """Add a new version of `key_id`, used by `wrap` from now on; returns it."""
        _refuse_audit_key(key_id, "rotated")
        current = self.current(check_key_id(key_id))
        if current is None:
            raise KeyStoreError(
                f"master key {key_id!r} does not exist, so it cannot be rotated",
                fix="list the keys with 'tre keys list'",
            )
        if not self._create_version(key_id, current + 1):
            raise KeyStoreError(
                f"version {current + 1} of master key {key_id!r} appeared meanwhile "
                "(another rotation at the same time?)",
                fix="wait for the other rotation to finish, then run the command again",
            )
        return current + 1

    def destroy(self, key_id: str, version: int) -> None:
        """Destroy an old version. The newest one cannot be destroyed: rotate first."""
        _refuse_audit_key(key_id, "destroyed")
        found = self.versions(check_key_id(key_id))
        if version not in found:
            raise KeyStoreError(
                f"master key {key_id!r} has no version {version}",
                reasons=[f"its versions: {', '.join(map(str, found)) or 'none'}"],
                fix="list the keys with 'tre keys list'",
            )
        if version == found[-1]:
            raise KeyStoreError(
                f"version {version} of master key {key_id!r} is its newest; data is "
                "wrapped with it",
                fix=f"rotate first (tre keys rotate --key {key_id}), then destroy the old version",
            )
        self._destroy_version(key_id, version)

    def wrap(self, key_id: str, data: bytes) -> str:
        """`data` (a key-encryption key) wrapped with the newest version of `key_id`."""
        version = self.current(check_key_id(key_id))
        if version is None:
            raise KeyStoreError(
                f"master key {key_id!r} is not in the {self.kind} key store",
                fix="ingest creates a dataset's keys; restore the key store from backup "
                "if it lost them",
            )
        return f"v{version}:{self._seal(key_id, version, bytes(data))}"

    def unwrap(self, key_id: str, wrapped: str) -> bytes:
        """What `wrap` wrapped; KeyVersionError if its version was destroyed."""
        version = version_of(wrapped)
        if version not in self.versions(check_key_id(key_id)):
            raise KeyVersionError(
                f"data was wrapped with version {version} of master key {key_id!r}, "
                f"which is not in the {self.kind} key store",
                fix="if it was destroyed after a rotation, the rotation did not reach "
                "every file: restore the version from backup, or restore the files' key "
                "material; 'tre keys list' shows which versions files still use",
            )
        return self._open(key_id, version, str(wrapped).split(":", 1)[1])

    def signing_version(self) -> int:
        """The version of the signing key `sign` uses now (the key is made on first use)."""
        self.ensure(SIGNING_KEY)
        return self.current(SIGNING_KEY) or 1

    def sign(self, data: bytes, version: int | None = None) -> bytes:
        """An HMAC-SHA256 of `data` with the key grants are signed with: its newest
        version, or `version` (the one a grant names, read with `signing_version()`
        before the claims were written)."""
        return self._mac(version or self.signing_version(), bytes(data))

    def verify(self, data: bytes, signature: bytes, version: int = 1) -> bool:
        """Whether `signature` is `sign(data)` with version `version` (compared in
        constant time); KeyVersionError if that version is not in the store."""
        if version not in self.versions(SIGNING_KEY):
            raise KeyVersionError(
                f"version {version} of the grant-signing key is not in the {self.kind} key "
                "store (destroyed after a rotation, or never made)",
                fix="a grant signed with it cannot be checked any more: start the job again",
            )
        return hmac.compare_digest(self._mac(version, bytes(data)), bytes(signature))

    _audit_key_ready = False

    def audit_mac(self, data: bytes) -> bytes:
        """An HMAC-SHA256 of `data` with the audit-chain key (made on first use): what
        keys the audit log's hash chain, so only the TRE can extend it."""
        if not self._audit_key_ready:
            self.ensure(AUDIT_KEY)  # once per instance: listing keys per event is slow
            self._audit_key_ready = True
        return self._mac(AUDIT_KEY_VERSION, bytes(data), AUDIT_KEY)

    def retire_audit_key(self) -> None:
        """Destroy the audit-chain key, once the chain is keyed in another key system
        (`tre keys configure`: the first event keyed there pins every earlier one)."""
        if AUDIT_KEY_VERSION in self.versions(AUDIT_KEY):
            self._destroy_version(AUDIT_KEY, AUDIT_KEY_VERSION)
        self._audit_key_ready = False


def _refuse_audit_key(key_id: str, what: str) -> None:
    if key_id == AUDIT_KEY:
        raise KeyStoreError(
            f"the audit-chain key {AUDIT_KEY!r} cannot be {what}: every audit event's hash "
            "is checked with it",
            fix="rotate or destroy data keys and the grant-signing key only",
        )


def version_of(wrapped: str | bytes) -> int:
    """The master key version named by a wrapped key; KeyVersionError if malformed."""
    text = wrapped.decode("ascii", "replace") if isinstance(wrapped, bytes) else str(wrapped)
    match = _WRAPPED.match(text)
    if match is None:
        raise KeyVersionError(
            "a wrapped key is not in the form tre writes ('v<version>:...')",
            fix="the file's key material is damaged: restore it from backup",
        )
    return int(match[1])


def seal(key: bytes, key_id: str, version: int, data: bytes) -> str:
    """AES-256-GCM with a random nonce; key id and version are the associated data."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, data, f"{key_id}#v{version}".encode())
    return base64.b64encode(nonce + sealed).decode("ascii")


def unseal(key: bytes, key_id: str, version: int, sealed: str) -> bytes:
    """The inverse of `seal`; KeyStoreError if it does not authenticate."""
    try:
        raw = base64.b64decode(sealed, validate=True)
        return AESGCM(key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{key_id}#v{version}".encode()
        )
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise KeyStoreError(
            f"a key wrapped with version {version} of master key {key_id!r} cannot be "
            "unwrapped: the key store holds a different key, or the file is damaged",
            fix="restore the key store (or the data file's key material) from backup",
        ) from exc


class LocalMasterKeys(MasterKeys):
    """Versions as files `<key id>.v<version>.key` in the local key store."""

    kind = "local"

    def __init__(self, keys_root: Path) -> None:
        self.store = LocalKeyStore(Path(keys_root))
        self._audit_key: bytes | None = None

    def __repr__(self) -> str:
        return f"LocalMasterKeys({str(self.store.root)!r})"

    def _name(self, key_id: str, version: int) -> str:
        return f"{key_id}.v{version}"

    def _all(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for name in self.store.names():
            key_id, _, number = name.rpartition(".v")
            if key_id and number.isdigit():
                found.setdefault(key_id, []).append(int(number))
        return {k: sorted(v) for k, v in found.items()}

    def key_ids(self) -> list[str]:
        return sorted(k for k in self._all() if k not in HMAC_KEYS)

    def versions(self, key_id: str) -> list[int]:
        return self._all().get(check_key_id(key_id), [])

    def _create_version(self, key_id: str, version: int) -> bool:
        return self.store.ensure_key(self._name(key_id, version))

    def _destroy_version(self, key_id: str, version: int) -> None:
        self.store.delete(self._name(key_id, version))
        if key_id == AUDIT_KEY:
            self._audit_key = None

    def _seal(self, key_id: str, version: int, data: bytes) -> str:
        return seal(self.store.get(self._name(key_id, version)), key_id, version, data)

    def _open(self, key_id: str, version: int, sealed: str) -> bytes:
        return unseal(self.store.get(self._name(key_id, version)), key_id, version, sealed)

    def _mac(self, version: int, data: bytes, key_id: str = SIGNING_KEY) -> bytes:
        if key_id == AUDIT_KEY:
            # The audit key MACs every event: read it once (it is never rotated).
            if self._audit_key is None:
                self._audit_key = self.store.get(self._name(key_id, version))
            key = self._audit_key
        else:
            key = self.store.get(self._name(key_id, version))
        return hmac.new(key, data, hashlib.sha256).digest()
