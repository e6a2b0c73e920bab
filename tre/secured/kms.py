"""Glue between pyarrow's Parquet modular encryption KMS layer and the key store.

Every secured file has an encrypted footer and every column encrypted; nothing is
left in plaintext. Keys are double-wrapped: each file gets random data keys (DEKs),
wrapped by key-encryption keys (KEKs) that pyarrow caches, which are wrapped in turn
by master keys that never leave the key store. There is one master key per dataset
for the footer and one per sensitivity class of its columns:

    <dataset>.footer  <dataset>.identifier  <dataset>.quasi_identifier  <dataset>.attribute

A reader is given an allow-list of master key ids (the footer plus the classes of the
columns it was granted). `LocalKmsClient` refuses to unwrap with any other key.

Why the process-level caches: nothing in pyarrow's encryption API pickles, so crypto
objects are built in the process that reads (each Dask worker). pyarrow's
`CryptoFactory` caches KMS clients and unwrapped KEKs *by access token*, so one factory
per process and one token per (key store, allow-list) gives a worker a handful of KMS
calls in all, while a reader with a narrower allow-list can never be served a KEK that
a wider one unwrapped earlier.

    PermissionDenied
    └── KeyNotAllowed    unwrap asked for a master key outside the reader's allow-list
    PlatformError
    └── KmsError         a wrapped key cannot be unwrapped (wrong or damaged key)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tre.errors import PermissionDenied, PlatformError
from tre.models import ColumnInfo, Sensitivity
from tre.secured.keystore import LocalKeyStore, check_key_id

__all__ = [
    "KeyNotAllowed",
    "KmsError",
    "LocalKmsClient",
    "clear_caches",
    "column_key_id",
    "connection_config",
    "decryption_properties",
    "encryption_properties",
    "footer_key_id",
]

_ROOT = "keys_root"
_ALLOWED = "allowed_key_ids"
_NONCE_BYTES = 12


class KeyNotAllowed(PermissionDenied):
    """A reader asked to unwrap with a master key it was not allowed."""


class KmsError(PlatformError):
    """A wrapped key cannot be unwrapped: the store's key is not the one used to write."""


def footer_key_id(dataset: str) -> str:
    """Master key id that encrypts `dataset`'s footers (every reader needs it)."""
    return check_key_id(f"{dataset}.footer")


def column_key_id(dataset: str, sensitivity: Sensitivity) -> str:
    """Master key id for `dataset`'s columns of one sensitivity class."""
    return check_key_id(f"{dataset}.{Sensitivity(sensitivity).value}")


class LocalKmsClient(pe.KmsClient):
    """A pyarrow KMS client backed by `LocalKeyStore`, wrapping with AES-256-GCM.

    Built by pyarrow from a `KmsConnectionConfig` whose `custom_kms_conf` holds
    `keys_root` and, for readers, `allowed_key_ids` (comma-separated). The wrapped form
    is base64(nonce || ciphertext || tag); the master key id is the associated data,
    so a wrapped key cannot be replayed under another master key.
    """

    def __init__(self, config: pe.KmsConnectionConfig) -> None:
        super().__init__()
        conf = dict(config.custom_kms_conf or {})
        if _ROOT not in conf:
            raise PlatformError(
                "the KMS connection names no key store",
                fix=f"build the configuration with tre.secured.kms.connection_config "
                f"(custom_kms_conf needs {_ROOT!r})",
            )
        self._store = LocalKeyStore(Path(conf[_ROOT]))
        allowed = conf.get(_ALLOWED)
        self._allowed = None if allowed is None else frozenset(filter(None, allowed.split(",")))

    def __repr__(self) -> str:
        allowed = "all" if self._allowed is None else ",".join(sorted(self._allowed))
        return f"LocalKmsClient({str(self._store.root)!r}, allowed={allowed})"

    def _master_key(self, master_key_identifier: str) -> bytes:
        if self._allowed is not None and master_key_identifier not in self._allowed:
            raise KeyNotAllowed(
                f"this reader may not use master key {master_key_identifier!r}",
                reasons=[f"it may use: {', '.join(sorted(self._allowed)) or 'none'}"],
                fix="read only the columns the project was approved for; ask the "
                "project's admin to add a column to the project's approval",
            )
        return self._store.get(master_key_identifier)

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Encrypt a KEK (or DEK) with the master key; base64 text."""
        aead = AESGCM(self._master_key(master_key_identifier))
        nonce = os.urandom(_NONCE_BYTES)
        sealed = aead.encrypt(nonce, bytes(key_bytes), master_key_identifier.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    def unwrap_key(self, wrapped_key: str | bytes, master_key_identifier: str) -> bytes:
        """Decrypt a wrapped key with the master key; KeyNotAllowed or KmsError if not."""
        aead = AESGCM(self._master_key(master_key_identifier))
        try:
            raw = base64.b64decode(wrapped_key, validate=True)
            return aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], master_key_identifier.encode()
            )
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise KmsError(
                f"a key wrapped with master key {master_key_identifier!r} cannot be "
                "unwrapped: the key store holds a different key, or the file is damaged",
                fix="restore the key store (or the data file) from backup",
            ) from exc


def _token(keys_root: Path, allowed: Iterable[str] | None) -> str:
    # pyarrow keys its KMS-client and KEK caches on the access token alone, so the
    # token must differ for each store and each allow-list (see the module docstring).
    scope = "*" if allowed is None else ",".join(sorted(set(allowed)))
    return hashlib.sha256(f"{keys_root}\0{scope}".encode()).hexdigest()[:32]


def connection_config(
    keys_root: Path, allowed_key_ids: Sequence[str] | None = None
) -> pe.KmsConnectionConfig:
    """The KMS connection for `keys_root`; None allows every key (writers only)."""
    root = str(Path(keys_root).absolute())
    conf = {_ROOT: root}
    if allowed_key_ids is not None:
        conf[_ALLOWED] = ",".join(check_key_id(k) for k in sorted(set(allowed_key_ids)))
    return pe.KmsConnectionConfig(
        custom_kms_conf=conf, key_access_token=_token(Path(root), allowed_key_ids)
    )


_lock = threading.Lock()
_factory: pe.CryptoFactory | None = None
_decryption: dict[tuple[str, tuple[str, ...]], pq.FileDecryptionProperties] = {}


def _crypto_factory() -> pe.CryptoFactory:
    global _factory
    with _lock:
        if _factory is None:
            _factory = pe.CryptoFactory(LocalKmsClient)
        return _factory


def clear_caches() -> None:
    """Forget cached decryption properties, KMS clients and KEKs in this process."""
    global _factory
    with _lock:
        _decryption.clear()
        if _factory is not None:
            _factory.remove_cache_entries_for_all_tokens()
        _factory = None


def encryption_properties(
    keys_root: Path, dataset: str, columns: Sequence[ColumnInfo]
) -> pq.FileEncryptionProperties:
    """Properties to write one file of `dataset`: encrypted footer, every column keyed.

    Creates missing master keys. Call once per file: each call draws fresh data keys.
    """
    store = LocalKeyStore(Path(keys_root))  # a broken store fails here, not inside pyarrow
    column_keys: dict[str, list[str]] = {}
    for column in columns:
        column_keys.setdefault(column_key_id(dataset, column.sensitivity), []).append(column.name)
    footer = footer_key_id(dataset)
    for key_id in (footer, *column_keys):
        store.ensure_key(key_id)
    config = pe.EncryptionConfiguration(
        footer_key=footer,
        # Columns missing from column_keys would be written in plaintext, so every
        # column is listed, under the key of its sensitivity class.
        column_keys=column_keys,
        uniform_encryption=False,
        plaintext_footer=False,
        double_wrapping=True,
        internal_key_material=True,
        encryption_algorithm="AES_GCM_V1",
        data_key_length_bits=256,
    )
    return _crypto_factory().file_encryption_properties(connection_config(keys_root), config)


def decryption_properties(
    keys_root: Path, allowed_key_ids: Sequence[str]
) -> pq.FileDecryptionProperties:
    """Properties to read secured files using only `allowed_key_ids`; cached per process.

    Every allowed key must exist in the store: that is checked here, in Python,
    because a failure inside pyarrow's metadata calls can abort the process.
    """
    root = Path(keys_root).absolute()
    allowed = tuple(sorted({check_key_id(k) for k in allowed_key_ids}))
    cache_key = (str(root), allowed)
    with _lock:
        cached = _decryption.get(cache_key)
    if cached is not None:
        return cached
    store = LocalKeyStore(root)
    for key_id in allowed:
        store.get(key_id)  # raises KeyStoreError naming a missing or damaged key
    props = _crypto_factory().file_decryption_properties(
        connection_config(root, allowed), pe.DecryptionConfiguration()
    )
    with _lock:
        return _decryption.setdefault(cache_key, props)
