"""Glue between pyarrow's Parquet modular encryption KMS layer and tre's master keys.

Every secured file has an encrypted footer and every column encrypted; nothing is
left in plaintext. Keys are double-wrapped: each file gets random data keys (DEKs),
wrapped by key-encryption keys (KEKs) that pyarrow generates and caches, which are
wrapped in turn by master keys that never leave their key-management system
(`tre.keys.masterkeys`). There is one master key per column and one per dataset
for the footers, with opaque ids (the key material must not spell out the schema):

    <dataset>.footer      <dataset>.c<16 hex digits of sha256(dataset, column)>

Key material is kept outside the data files (`_KEY_MATERIAL_FOR_<file>.json` beside
each file), so rotating a master key re-wraps the KEKs in those small files and never
rewrites data (`rotate_file`).

Two roles reach the KMS client. A writer (ingest, rotation; run by an admin) may wrap
and unwrap with any key. A reader presents a signed grant (`tre.keys.grants`) as
pyarrow's access token; every unwrap checks its signature, expiry, revocation and that
it covers the master key asked for.

Why the process-level caches: nothing in pyarrow's encryption API pickles, so crypto
objects are built in the process that reads (each Dask worker). pyarrow's
`CryptoFactory` caches KMS clients and unwrapped KEKs *by access token*; the token is
the job's grant, so a worker makes one KMS call per master key it needs, whatever the
number of files, and two jobs never share an unwrapped KEK.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tre.errors import PermissionDenied, PlatformError
from tre.keys.grants import Grant, Revocations, authorise
from tre.keys.keyclient import ServiceMasterKeys
from tre.keys.keystore import KeyStoreError, check_key_id
from tre.keys.keysystems import open_master_keys
from tre.keys.masterkeys import KmsSettings, MasterKeys, version_of
from tre.models import ColumnInfo

__all__ = [
    "KeyNotAllowed",
    "KmsError",
    "TreKmsClient",
    "authorise_grant",
    "clear_caches",
    "column_key_id",
    "data_keys",
    "decryption_properties",
    "encryption_properties",
    "footer_key_id",
    "key_material_path",
    "key_material_versions",
    "keys_for",
    "reader_config",
    "rotate_file",
    "writer_config",
]

_ROLE = "role"
KEY_MATERIAL_PREFIX = "_KEY_MATERIAL_FOR_"


class KeyNotAllowed(PermissionDenied):
    """A reader's KMS client was asked to wrap: only writers wrap."""


class KmsError(PlatformError):
    """The key material of a file cannot be used (damaged, or a key is gone)."""


def footer_key_id(dataset: str) -> str:
    """Master key id that encrypts `dataset`'s footers (every reader needs it)."""
    return check_key_id(f"{dataset}.footer")


def column_key_id(dataset: str, column: str) -> str:
    """Master key id of one column of `dataset` (the same in every version)."""
    digest = hashlib.sha256(f"{dataset}\0{column}".encode()).hexdigest()[:16]
    return check_key_id(f"{dataset}.c{digest}")


def keys_for(dataset: str, columns: Sequence[str]) -> list[str]:
    """The master keys a reader of `columns` of `dataset` needs: the footer's and theirs."""
    return [footer_key_id(dataset), *(column_key_id(dataset, c) for c in dict.fromkeys(columns))]


def authorise_grant(
    settings: KmsSettings,
    token: str,
    key_ids: Sequence[str],
    labels: dict[str, str] | None = None,
) -> Grant:
    """Check the grant `token` allows `key_ids` now: at the key service when the keys are
    there (the job cannot skip it), else against the local keys and revocations."""
    keys = open_master_keys(settings)
    if token and isinstance(keys, ServiceMasterKeys):
        return keys.authorise(token, key_ids, labels)
    # Here, or no token at all (refused before any key system is asked).
    return authorise(token, keys, Revocations(settings.keys_root), key_ids, labels)


def _unwrap_granted(
    keys: MasterKeys, settings: KmsSettings, token: str, key_id: str, wrapped: str
) -> bytes:
    """Unwrap `wrapped` with master key `key_id` under the grant `token`."""
    if isinstance(keys, ServiceMasterKeys):
        return keys.unwrap_with_grant(token, key_id, wrapped)  # checked at the service
    authorise(token, keys, Revocations(settings.keys_root), [key_id])
    return keys.unwrap(key_id, wrapped)


class TreKmsClient(pe.KmsClient):
    """A pyarrow KMS client over `MasterKeys`, for writers or grant-holding readers.

    Built by pyarrow from a `KmsConnectionConfig` made by `writer_config` or
    `reader_config`: `custom_kms_conf` holds the KmsSettings and the role; a reader's
    access token is its grant.
    """

    def __init__(self, config: pe.KmsConnectionConfig) -> None:
        super().__init__()
        conf = dict(config.custom_kms_conf or {})
        self._settings = KmsSettings.from_conf(conf)
        self._writer = conf.get(_ROLE) == "writer"
        self._token = "" if self._writer else str(config.key_access_token)
        self._keys = open_master_keys(self._settings)

    def __repr__(self) -> str:  # never the token: it is a credential
        return f"TreKmsClient({self._settings.kind}, {'writer' if self._writer else 'reader'})"

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Wrap a KEK (or DEK) with the newest version of the master key; writers only."""
        if not self._writer:
            raise KeyNotAllowed(
                f"a reader may not wrap keys (asked for master key {master_key_identifier!r})",
                fix="only ingest and key rotation write key material",
            )
        return self._keys.wrap(master_key_identifier, bytes(key_bytes))

    def unwrap_key(self, wrapped_key: str | bytes, master_key_identifier: str) -> bytes:
        """Unwrap with the master key, after checking a reader's grant covers it.

        With the key service, a "writer" is only what this process's configuration
        says: the service itself refuses a writer's unwrap from anyone but the TRE.
        """
        text = wrapped_key.decode("ascii") if isinstance(wrapped_key, bytes) else wrapped_key
        if self._writer:
            return self._keys.unwrap(master_key_identifier, text)
        return _unwrap_granted(self._keys, self._settings, self._token, master_key_identifier, text)


def writer_config(settings: KmsSettings) -> pe.KmsConnectionConfig:
    """The KMS connection of a writer (ingest and rotation)."""
    return pe.KmsConnectionConfig(
        custom_kms_conf={**settings.as_conf(), _ROLE: "writer"},
        key_access_token=f"writer-{settings.fingerprint()}",
    )


def reader_config(settings: KmsSettings, token: str) -> pe.KmsConnectionConfig:
    """The KMS connection of a reader holding the grant `token`."""
    return pe.KmsConnectionConfig(
        custom_kms_conf={**settings.as_conf(), _ROLE: "reader"}, key_access_token=token
    )


_lock = threading.Lock()
_factory: pe.CryptoFactory | None = None
_decryption: dict[tuple[str, str], pq.FileDecryptionProperties] = {}


def _crypto_factory() -> pe.CryptoFactory:
    global _factory
    with _lock:
        if _factory is None:
            _factory = pe.CryptoFactory(TreKmsClient)
        return _factory


def clear_caches() -> None:
    """Forget cached decryption properties, KMS clients, KEKs and DEKs in this process."""
    global _factory
    with _lock:
        _decryption.clear()
        _keks.clear()
        _deks.clear()
        if _factory is not None:
            _factory.remove_cache_entries_for_all_tokens()
        _factory = None


def encryption_properties(
    settings: KmsSettings, dataset: str, columns: Sequence[ColumnInfo], path: Path
) -> pq.FileEncryptionProperties:
    """Properties to write the file `path` of `dataset`: encrypted footer, every column
    under its own master key, key material beside the file.

    Creates missing master keys. Call once per file: each call draws fresh data keys.
    """
    keys = open_master_keys(settings)
    column_keys = {column_key_id(dataset, c.name): [c.name] for c in columns}
    if len(column_keys) != len(columns):  # 64 bits of sha256: never, but never silently
        raise PlatformError(f"two columns of {dataset!r} map to one key id; rename one")
    footer = footer_key_id(dataset)
    for key_id in (footer, *column_keys):
        keys.ensure(key_id)
    config = pe.EncryptionConfiguration(
        footer_key=footer,
        # Columns missing from column_keys would be written in plaintext, so every
        # column is listed, under its own key.
        column_keys=column_keys,
        uniform_encryption=False,
        plaintext_footer=False,
        double_wrapping=True,
        internal_key_material=False,
        encryption_algorithm="AES_GCM_V1",
        data_key_length_bits=256,
    )
    return _crypto_factory().file_encryption_properties(
        writer_config(settings), config, parquet_file_path=str(path)
    )


def decryption_properties(
    settings: KmsSettings, token: str, path: Path
) -> pq.FileDecryptionProperties:
    """Properties to read the file `path` under the grant `token`; cached per process.

    The grant is checked by the caller first (`tre.secured.reader`) and again by the
    KMS client at every unwrap.
    """
    cache_key = (token, str(path))
    with _lock:
        cached = _decryption.get(cache_key)
    if cached is not None:
        return cached
    props = _crypto_factory().file_decryption_properties(
        reader_config(settings, token), pe.DecryptionConfiguration(), parquet_file_path=str(path)
    )
    with _lock:
        if len(_decryption) > 4096:
            _decryption.clear()
        return _decryption.setdefault(cache_key, props)


def private(path: Path) -> None:
    """Make a file pyarrow wrote (with the umask's mode) 0600, if it exists."""
    with contextlib.suppress(FileNotFoundError):  # no key material: nothing to protect
        os.chmod(path, 0o600)


def key_material_path(path: Path) -> Path:
    """Where pyarrow keeps the key material of the data file `path`."""
    path = Path(path)
    return path.parent / f"{KEY_MATERIAL_PREFIX}{path.name}.json"


def _entries(path: Path) -> Iterator[dict[str, object]]:
    material = key_material_path(path)
    try:
        outer = json.loads(material.read_text(encoding="utf-8"))
        for value in outer.values():
            if isinstance(value, str) and value.startswith("{"):
                yield json.loads(value)
    except FileNotFoundError as exc:
        raise KmsError(
            f"the key material of {path.name} is missing ({material.name})",
            fix="restore it from backup: without it the file cannot be decrypted",
        ) from exc
    except (OSError, ValueError) as exc:
        raise KmsError(
            f"the key material of {path.name} cannot be read ({material.name})",
            reasons=[str(exc).splitlines()[0]],
            fix="restore it from backup: without it the file cannot be decrypted",
        ) from exc


_keks: dict[tuple[str, str], bytes] = {}
_deks: dict[tuple[str, str], dict[str, bytes]] = {}


def data_keys(
    settings: KmsSettings, token: str, path: Path, key_ids: Sequence[str]
) -> dict[str, bytes]:
    """The data keys (DEKs) of file `path` for the master keys `key_ids`, unwrapped
    under the grant `token`: for readers that take explicit keys (polars).

    The same two steps pyarrow's KMS layer takes, from the same key material: the KEK
    is unwrapped by the master key after the grant is checked (once per KEK and grant
    in this process), then the DEK by the KEK (AES-GCM, the KEK's id as associated
    data). Cached per grant and file; DEKs never change, even when keys are rotated.
    """
    cache_key = (token, str(path))
    with _lock:
        cached = _deks.get(cache_key)
    if cached is not None and all(k in cached for k in key_ids):
        return {k: cached[k] for k in key_ids}
    keys = open_master_keys(settings)
    found: dict[str, bytes] = {}
    for entry in _entries(path):
        master = str(entry.get("masterKeyID", ""))
        if master not in key_ids:
            continue
        authorise_grant(settings, token, [master])
        try:
            found[master] = _unwrap_dek(keys, settings, token, master, entry)
        except (InvalidTag, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KmsError(
                f"the key material of {Path(path).name} cannot be unwrapped",
                fix="restore the file's key material from backup",
            ) from exc
    missing = sorted(set(key_ids) - set(found))
    if missing:
        raise KmsError(
            f"the key material of {Path(path).name} has no key for {', '.join(missing)}",
            fix="restore the file's key material from backup",
        )
    with _lock:
        if len(_deks) > 4096:
            _deks.clear()
        _deks.setdefault(cache_key, {}).update(found)
    return found


def _unwrap_dek(
    keys: MasterKeys, settings: KmsSettings, token: str, master: str, entry: dict[str, object]
) -> bytes:
    if not entry.get("doubleWrapping"):
        return _unwrap_granted(keys, settings, token, master, str(entry["wrappedDEK"]))
    kek_id = str(entry["keyEncryptionKeyID"])
    with _lock:
        kek = _keks.get((token, kek_id))
    if kek is None:
        kek = _unwrap_granted(keys, settings, token, master, str(entry["wrappedKEK"]))
        with _lock:
            _keks[(token, kek_id)] = kek
    raw = base64.b64decode(str(entry["wrappedDEK"]), validate=True)
    return AESGCM(kek).decrypt(raw[:12], raw[12:], base64.b64decode(kek_id, validate=True))


def key_material_versions(path: Path) -> dict[str, set[int]]:
    """Master key id -> the versions the key material of data file `path` is wrapped with."""
    found: dict[str, set[int]] = {}
    for entry in _entries(path):
        key_id = str(entry.get("masterKeyID", ""))
        wrapped = entry.get("wrappedKEK") or entry.get("wrappedDEK")
        try:
            found.setdefault(key_id, set()).add(version_of(str(wrapped)))
        except KeyStoreError as exc:
            raise KmsError(
                f"the key material of {Path(path).name} is damaged",
                reasons=[exc.message],
                fix="restore it from backup",
            ) from exc
    return found


def rotate_file(settings: KmsSettings, path: Path) -> None:
    """Re-wrap the key material of `path` with the newest master key versions.

    New KEKs, wrapped with the newest versions; the data keys and the data file are
    untouched. pyarrow writes the new material beside the old and renames it into place.
    """
    factory = _crypto_factory()
    config = writer_config(settings)
    factory.rotate_master_keys(config, str(path), double_wrapping=True)
    private(key_material_path(path))


def forget_writer_keks(settings: KmsSettings) -> None:
    """Drop the writer's cached KEKs: after a rotation, new files must not be wrapped
    with a KEK that an old master key version wrapped."""
    factory = _crypto_factory()
    factory.remove_cache_entries_for_token(writer_config(settings).key_access_token)
