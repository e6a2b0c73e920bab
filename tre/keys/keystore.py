"""The local key store: master keys as 0600 files in a 0700 folder (TRE_HOME/keys).

This is where the embedded default (`tre.keys.masterkeys.LocalMasterKeys`) keeps
its keys; a deployment can use an HSM (`tre.keys.pkcs11keys`) instead. Keys are
256-bit random values, one file each, named `<name>.key` (the master keys' names carry
their version: `<key id>.v<version>`). They are only ever read to wrap and unwrap
key-encryption keys and to sign grants: key bytes are never logged, printed, put in an
exception message or shown in a repr.

    PlatformError
    └── KeyStoreError     the key store is missing, too open, or a key is bad/missing
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from tre.errors import PlatformError

__all__ = ["KEY_BYTES", "KeyStoreError", "LocalKeyStore", "check_key_id"]

#: AES-256 master keys.
KEY_BYTES = 32

_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_SUFFIX = ".key"


class KeyStoreError(PlatformError):
    """The key store or one of its keys cannot be used (the administrators' to fix)."""


def check_key_id(key_id: str) -> str:
    """Return `key_id` if it is a safe master key id; KeyStoreError otherwise.

    Key ids become file names, so the grammar leaves no room for '/', '..' at the
    start, or anything a shell or path join could misread.
    """
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise KeyStoreError(
            f"master key id {key_id!r} is not allowed",
            fix="use lower-case letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, at most 128 characters",
        )
    return key_id


def _too_open(mode: int) -> bool:
    return bool(stat.S_IMODE(mode) & 0o077)


class LocalKeyStore:
    """Master keys kept as files under `root` (TRE_HOME/keys)."""

    def __init__(self, root: Path) -> None:
        root = Path(root)
        try:
            info = root.stat()
        except FileNotFoundError as exc:
            raise KeyStoreError(
                f"the key store {root} does not exist",
                fix="create the TRE home with 'tre init', or restore the keys folder from "
                "backup (without its keys no secured dataset can be read)",
            ) from exc
        except OSError as exc:
            raise KeyStoreError(
                f"the key store {root} cannot be opened: {exc.strerror}",
                fix="run tre as the user that owns the TRE home",
            ) from exc
        if not stat.S_ISDIR(info.st_mode):
            raise KeyStoreError(
                f"the key store {root} is not a folder",
                fix="restore the keys folder from backup",
            )
        if _too_open(info.st_mode):
            raise KeyStoreError(
                f"the key store {root} has mode {stat.S_IMODE(info.st_mode):04o}, "
                "which lets other users in",
                fix=f"run 'chmod 700 {root}' and check nobody else copied the keys",
            )
        self.root = root

    def __repr__(self) -> str:
        return f"LocalKeyStore({str(self.root)!r})"

    def _path(self, key_id: str) -> Path:
        return self.root / (check_key_id(key_id) + _SUFFIX)

    def exists(self, key_id: str) -> bool:
        """Whether a master key called `key_id` is in the store."""
        return self._path(key_id).is_file()

    def names(self) -> list[str]:
        """Every key id in the store, sorted (temporary files are not keys)."""
        return sorted(
            p.name.removesuffix(_SUFFIX)
            for p in self.root.iterdir()
            if p.name.endswith(_SUFFIX) and not p.name.startswith(".") and p.is_file()
        )

    def delete(self, key_id: str) -> bool:
        """Remove key `key_id` for good; True if it was there.

        The file is overwritten before it is unlinked, which is what a file system lets
        us do: on copy-on-write or journalled storage old blocks may survive, so backups
        and snapshots of the key store must be destroyed the same way (docs/keys.md).
        """
        path = self._path(key_id)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            os.write(fd, b"\0" * KEY_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
        self._sync_folder()
        return True

    def ensure_key(self, key_id: str) -> bool:
        """Create a random master key `key_id` unless it exists; True if it was created.

        The key is written to a private temporary file (0600 from its creation, so
        there is no moment it is readable by others) and hard-linked into place: a link
        never replaces an existing file, so two racing ingests cannot overwrite a key
        that data has already been encrypted with.
        """
        final = self._path(key_id)
        if final.exists():
            return False
        tmp = self.root / f".{key_id}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
        finally:
            tmp.unlink(missing_ok=True)
        self._sync_folder()
        return True

    def _sync_folder(self) -> None:
        # Make the new directory entry durable: a key lost in a crash after data was
        # encrypted with it would make that data unreadable for ever.
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, key_id: str) -> bytes:
        """The master key `key_id`; KeyStoreError if it is missing, unreadable or bad."""
        path = self._path(key_id)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise KeyStoreError(
                f"master key {key_id!r} is not in the key store {self.root}",
                fix="restore the key from backup; data encrypted with it cannot be read without it",
            ) from exc
        except OSError as exc:
            raise KeyStoreError(
                f"master key {key_id!r} cannot be read: {exc.strerror}",
                fix="run tre as the user that owns the TRE home",
            ) from exc
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            key = handle.read(KEY_BYTES + 1)
        if _too_open(mode):
            raise KeyStoreError(
                f"master key {key_id!r} has mode {stat.S_IMODE(mode):04o}, "
                "which lets other users read it",
                fix=f"run 'chmod 600 {path}' and treat the key as possibly copied",
            )
        if len(key) != KEY_BYTES:
            # Say how long it is, never what it contains.
            raise KeyStoreError(
                f"master key {key_id!r} is damaged: {len(key)} bytes instead of {KEY_BYTES}",
                fix="restore the key from backup",
            )
        return key
