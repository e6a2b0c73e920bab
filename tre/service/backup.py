"""Backups of a TRE home: a consistent copy an admin can check and restore.

- `backup_home`: the state database through SQLite's online backup (a consistent
  snapshot even while the service and the dispatcher write), its audit anchor made from
  that snapshot, and the home's files: configuration, policies, the session key, the
  local key store, the secured data (unless left out), jobs and releases. Written under
  a temporary name and renamed when complete, with `backup.json` (every file's sha256)
  written last, so a half-written backup is never mistaken for one.
- `verify_backup`: every file against the manifest, the audit chain of the copied
  database, and (local key store) that every key version the data's key material needs
  is in the backup.
- `restore_home`: verify, then copy into a new folder that becomes a home.

Order matters for keys: the data's key material is copied before the key store, so a
key rotation during the backup can only add versions the copied key material does not
need (destroying a version during a backup is the one thing to avoid; `verify_backup`
catches it). What a backup holds is as sensitive as the home: keys and data together.
It is made 0700, and its key files 0600, as in the home.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from policies.access import raise_if, role_refusals
from tre import audit, yamlfile
from tre.errors import InputError, PlatformError
from tre.home import Home, HomeConfig
from tre.keys.kms import key_material_versions
from tre.keys.masterkeys import LocalMasterKeys
from tre.models import Role, utcnow
from tre.secured.parts import file_sha256
from tre.service.session import Session

__all__ = [
    "BackupCheck",
    "BackupResult",
    "backup_home",
    "restore_home",
    "verify_backup",
]

MANIFEST = "backup.json"
FORMAT = 1
#: What is copied besides the database, in this order (key material before keys).
_TREES = ("policies", "data", "jobs", "releases", "keys")
_FILES = ("tre.yaml", "web.key")
#: Never copied: the live database and its WAL (the snapshot replaces them), the anchor
#: (made from the snapshot), locks and temporary files.
_SKIP_SUFFIXES = (".tmp", ".lock", "-wal", "-shm", "-journal")

Progress = Callable[[str], None]


@dataclass
class BackupResult:
    """What `backup_home` wrote."""

    path: Path
    files: int
    bytes: int
    audit_events: int
    data_included: bool
    kms: str


@dataclass
class BackupCheck:
    """What `verify_backup` found: nothing in `problems` means the backup is whole."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _tre_version() -> str:
    try:
        return version("tre")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _check_destination(home: Home, dest: Path) -> Path:
    dest = dest.absolute()
    if dest.exists():
        raise InputError(
            f"{dest} already exists; a backup is written to a new folder",
            fix="choose a new path (for example one named by the date)",
        )
    if not dest.parent.is_dir():
        raise InputError(
            f"the folder {dest.parent} does not exist", fix="create it first, or choose another"
        )
    if dest.is_relative_to(home.root) or home.root.is_relative_to(dest):
        raise InputError(
            f"{dest} is inside the TRE home (or holds it)",
            fix="write backups outside the home, ideally on another disk or machine",
        )
    return dest


def _walk(root: Path) -> Iterator[Path]:
    """Files under `root`, in a stable order, without symlinks or temporary files."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.endswith(_SKIP_SUFFIXES):
            yield path


def _copy_tree(source: Path, target: Path, include_data: bool) -> None:
    for name in _TREES:
        if name == "data" and not include_data:
            continue
        root = source / name
        if not root.is_dir():
            continue
        for path in _walk(root):
            copied = target / path.relative_to(source)
            copied.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copy2(path, copied)  # keeps 0600 on keys and tokens
    for name in _FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def _snapshot_database(home: Home, target: Path) -> audit.Verification:
    """A consistent copy of state.db (SQLite's online backup), its anchor made from it."""
    copy = target / "state.db"
    copy.touch(mode=0o600)
    source = sqlite3.connect(home.db_path)
    destination = sqlite3.connect(copy)
    try:
        source.backup(destination)  # one step: a single consistent snapshot
        destination.execute("PRAGMA journal_mode=DELETE")  # a lone file, no WAL beside it
        audit.write_anchor(destination, target / "audit.head")
        destination.row_factory = sqlite3.Row
        mac = audit.keyed_with(home.kms_settings())
        return audit.verify(destination, target / "audit.head", mac=mac)
    finally:
        destination.close()
        source.close()


def _manifest(target: Path) -> dict[str, dict[str, Any]]:
    return {
        str(path.relative_to(target)): {"sha256": file_sha256(path), "bytes": path.stat().st_size}
        for path in _walk(target)
        if path.name != MANIFEST
    }


def backup_home(
    session: Session, dest: Path, *, include_data: bool = True, progress: Progress | None = None
) -> BackupResult:
    """Write a backup of the session's home to the new folder `dest` (admins)."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "backing up the TRE home"),
        "you cannot back up the TRE home",
    )
    home = session.home
    dest = _check_destination(home, dest)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    try:
        say = progress or (lambda _: None)
        say("copying the secured data, jobs, releases and keys")
        _copy_tree(home.root, partial, include_data)
        say("taking a snapshot of the state database")
        verification = _snapshot_database(home, partial)
        say("writing the manifest (sha256 of every file)")
        files = _manifest(partial)
        manifest = {
            "format": FORMAT,
            "created_at": utcnow().isoformat(),
            "created_by": session.actor,
            "tre": _tre_version(),
            "home": str(home.root),
            "kms": home.config.kms,
            "data_included": include_data,
            "audit": {"events": verification.events, "ok": verification.ok},
            "files": files,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.chmod(partial / MANIFEST, 0o600)
        os.replace(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    result = BackupResult(
        path=dest,
        files=len(files) + 1,
        bytes=sum(f["bytes"] for f in files.values()),
        audit_events=verification.events,
        data_included=include_data,
        kms=home.config.kms,
    )
    with session.write() as conn:
        session.record(
            conn,
            "home.backup",
            "home",
            Role.ADMIN,
            {
                "path": str(dest),
                "files": result.files,
                "bytes": result.bytes,
                "data_included": include_data,
                "audit_events": verification.events,
            },
        )
    return result


def _read_manifest(path: Path, check: BackupCheck) -> dict[str, Any] | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        check.problems.append(f"{MANIFEST} is missing: this is not a finished tre backup")
        return None
    except (OSError, ValueError) as exc:
        check.problems.append(f"{MANIFEST} cannot be read: {exc}")
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        check.problems.append(f"{MANIFEST} is not a tre backup manifest of format {FORMAT}")
        return None
    return manifest


def _check_files(path: Path, files: dict[str, Any], check: BackupCheck) -> None:
    present = {str(p.relative_to(path)) for p in _walk(path) if p.name != MANIFEST}
    for name in sorted(set(files) - present):
        check.problems.append(f"{name} is missing")
    for name in sorted(present - set(files)):
        check.problems.append(f"{name} is not in the manifest (added after the backup)")
    for name in sorted(set(files) & present):
        if file_sha256(path / name) != files[name].get("sha256"):
            check.problems.append(f"{name} was changed after the backup (sha256 differs)")


def _check_audit(path: Path, check: BackupCheck) -> None:
    conn = sqlite3.connect(f"file:{path / 'state.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        result = audit.verify(conn, path / "audit.head", mac=_backup_audit_mac(path))
    except sqlite3.DatabaseError as exc:
        check.problems.append(f"state.db cannot be read: {exc}")
        return
    except PlatformError as exc:
        check.problems.append(f"the audit log's key cannot be used: {exc.message}")
        return
    finally:
        conn.close()
    check.problems += [f"audit log: {p}" for p in result.problems]


def _backup_audit_mac(path: Path) -> audit.Mac | None:
    """The audit MAC of the home a backup was taken from: the backup's own key store, or
    the HSM its tre.yaml names. None if tre.yaml cannot be read (keyed events are then
    reported as unchecked)."""
    try:
        config = HomeConfig.model_validate(yamlfile.load((path / "tre.yaml").read_bytes()))
    except (OSError, ValueError):  # a YamlError is a ValueError
        return None
    return audit.keyed_with(Home(path, config).backing_kms_settings())


def _check_keys(path: Path, check: BackupCheck) -> None:
    """Every key version the copied key material names is in the copied key store."""
    keys = LocalMasterKeys(path / "keys")
    held: dict[str, set[int]] = {}  # key id -> versions in the store, listed once each
    for material in sorted((path / "data").rglob("*.parquet")):
        for key_id, versions in key_material_versions(material).items():
            if key_id not in held:
                held[key_id] = set(keys.versions(key_id))
            missing = sorted(set(versions) - held[key_id])
            if missing:
                name = material.relative_to(path)
                check.problems.append(
                    f"{name} needs version(s) {', '.join(map(str, missing))} of master key "
                    f"{key_id!r}, which the backup's key store does not hold"
                )


def verify_backup(path: Path) -> BackupCheck:
    """Check a backup folder: manifest, every file's sha256, the audit log, the keys."""
    path = path.absolute()
    check = BackupCheck(path)
    if not path.is_dir():
        check.problems.append(f"{path} is not a folder")
        return check
    manifest = _read_manifest(path, check)
    if manifest is None:
        return check
    check.manifest = manifest
    _check_files(path, manifest.get("files", {}), check)
    if (path / "state.db").is_file():
        _check_audit(path, check)
    if manifest.get("kms") == "local" and manifest.get("data_included"):
        _check_keys(path, check)
    return check


def restore_home(backup: Path, target: Path) -> BackupCheck:
    """Make `target` (new) a TRE home from a verified backup; PlatformError if the
    backup does not verify, with every problem."""
    check = verify_backup(backup)
    if not check.ok:
        raise PlatformError(
            f"the backup {check.path} does not verify, so it was not restored",
            reasons=check.problems,
            fix="restore from another backup ('tre backup verify' checks one)",
        )
    if not check.manifest.get("data_included"):
        raise InputError(
            f"the backup {check.path} was taken without the secured data",
            fix="restore the data/ folder from its own backup into a copy of this one, or "
            "restore a backup taken with the data",
        )
    target = target.absolute()
    if target.exists():
        raise InputError(f"{target} already exists", fix="restore into a new folder")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        shutil.copytree(check.path, partial, copy_function=shutil.copy2)
        (partial / MANIFEST).unlink()
        for folder in ("keys", "data", "jobs", "releases"):
            (partial / folder).mkdir(mode=0o700, exist_ok=True)
        for directory in [partial, *(p for p in partial.rglob("*") if p.is_dir())]:
            os.chmod(directory, 0o700)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return check
