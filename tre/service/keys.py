"""Master keys (admins): which system holds them, listing, rotation, destroying old versions.

- `configure_kms`: choose the local key store or a PKCS#11 HSM (before any ingest).
- `list_keys`: every master key, what it protects, its versions, and how many files'
  key material each version still wraps.
- `rotate_keys`: a new version of each chosen key, then every data file's key material
  re-wrapped with the newest versions (no data file is rewritten; their sha256 stays).
  The grant-signing key rotates too: new grants are signed with its new version, and
  grants already issued name the version that signed them, so running jobs go on.
- `destroy_version`: destroy an old version, refused while any file still needs it (a
  data key) or any active grant was signed with it (the signing key).

Each is audited. Key bytes are never shown, logged or audited. See docs/keys.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from policies.access import raise_if, role_refusals
from tre import audit
from tre.errors import InputError, StateError
from tre.home import Home
from tre.keys.keysystems import open_master_keys
from tre.keys.kms import (
    column_key_id,
    footer_key_id,
    forget_writer_keks,
    key_material_versions,
    rotate_file,
)
from tre.keys.masterkeys import KINDS, SIGNING_KEY, KmsSettings
from tre.keyservice import process as keyservice
from tre.models import Dataset, Role, utcnow
from tre.service.grants import kms_settings, master_keys, retire_finished_grants
from tre.service.session import Session
from tre.store import grants as grants_store
from tre.store.versions import dataset_versions

__all__ = [
    "KeyInfo",
    "Rotation",
    "configure_kms",
    "destroy_version",
    "list_keys",
    "rotate_keys",
]


@dataclass
class KeyInfo:
    """One master key as admins see it (never its bytes)."""

    key_id: str
    protects: str  # "care: column age", "care: footers", "key grants (signing)"
    versions: list[int]
    in_use: dict[int, int] = field(default_factory=dict)  # version -> files (or grants) using it
    unit: str = "file(s)"  # what `in_use` counts

    @property
    def current(self) -> int | None:
        """The version new wrapping uses."""
        return self.versions[-1] if self.versions else None


@dataclass
class Rotation:
    """What `rotate_keys` did."""

    versions: dict[str, tuple[int, int]]  # key id -> (old, new) current version
    files: int


def _admin(session: Session, action: str) -> None:
    raise_if(role_refusals(session.person(), Role.ADMIN, action), f"you cannot do {action}")


def _protects(datasets: Iterable[Dataset]) -> dict[str, str]:
    """Key id -> what it protects, from every version's columns."""
    found = {SIGNING_KEY: "key grants (signing, never wraps data)"}
    for dataset in datasets:
        found[footer_key_id(dataset.name)] = f"{dataset.name}: footers"
        for column in dataset.columns:
            found[column_key_id(dataset.name, column.name)] = (
                f"{dataset.name}: column {column.name}"
            )
    return found


def _files(session: Session, datasets: Iterable[Dataset]) -> list[Path]:
    return [session.home.data / f.path for d in datasets for f in d.files]


def _usage(files: Iterable[Path]) -> dict[str, dict[int, list[Path]]]:
    """Key id -> version -> the data files whose key material uses it."""
    usage: dict[str, dict[int, list[Path]]] = {}
    for path in files:
        for key_id, versions in key_material_versions(path).items():
            for version in versions:
                usage.setdefault(key_id, {}).setdefault(version, []).append(path)
    return usage


def list_keys(session: Session) -> list[KeyInfo]:
    """Every master key of this home, with its versions and the files using each."""
    _admin(session, "listing master keys")
    keys = master_keys(session)
    datasets = dataset_versions(session.conn)
    protects = _protects(datasets)
    usage = _usage(_files(session, datasets))
    found = [
        KeyInfo(
            key_id=key_id,
            protects=protects.get(key_id, "nothing in the catalog"),
            versions=keys.versions(key_id),
            in_use={v: len(paths) for v, paths in sorted(usage.get(key_id, {}).items())},
        )
        for key_id in keys.key_ids()
    ]
    signing = keys.versions(SIGNING_KEY)
    if signing:
        active = _active_grants_by_version(session)
        found.append(
            KeyInfo(
                key_id=SIGNING_KEY,
                protects=protects[SIGNING_KEY],
                versions=signing,
                in_use={v: len(active[v]) for v in sorted(active)},
                unit="active grant(s)",
            )
        )
    return found


def _active_grants_by_version(session: Session) -> dict[int, list[str]]:
    """Signing key version -> the ids of the active (unrevoked, unexpired) grants it signed."""
    found: dict[int, list[str]] = {}
    for grant in grants_store.list_grants(session.conn, unrevoked=True, live_at=utcnow()):
        found.setdefault(grant.signed_with, []).append(grant.id)
    return found


def rotate_keys(
    session: Session,
    *,
    dataset: str | None = None,
    key_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Rotation:
    """Rotate the keys of `dataset`, or one `key_id`, or (neither) every key; then
    re-wrap every data file's key material with the newest versions."""
    _admin(session, "rotating master keys")
    keys = master_keys(session)
    datasets = dataset_versions(session.conn)
    if dataset is not None:
        chosen = sorted(
            k for k, what in _protects(datasets).items() if what.startswith(f"{dataset}:")
        )
        if not chosen:
            raise InputError(
                f"there is no dataset {dataset!r} in the catalog", fix="tre dataset list"
            )
    elif key_id is not None:
        chosen = [key_id]
    else:
        chosen = keys.key_ids() + ([SIGNING_KEY] if keys.versions(SIGNING_KEY) else [])
    unknown = [k for k in chosen if not keys.versions(k)]
    if unknown:
        raise InputError(
            f"no master key {', '.join(map(repr, unknown))} in this home's key store",
            fix="list the keys with 'tre keys list'",
        )
    versions = {k: (keys.current(k) or 0, keys.rotate(k)) for k in chosen}
    settings = kms_settings(session)
    forget_writer_keks(settings)  # new files must not reuse a KEK the old version wrapped
    files = [
        path for path in _files(session, datasets) if set(key_material_versions(path)) & set(chosen)
    ]
    for done, path in enumerate(files, start=1):
        rotate_file(settings, path)
        if progress is not None:
            progress(done, len(files))
    with session.write() as conn:
        session.record(
            conn,
            "keys.rotate",
            f"keys:{dataset or key_id or 'all'}",
            Role.ADMIN,
            {"keys": {k: f"v{a}->v{b}" for k, (a, b) in versions.items()}, "files": len(files)},
        )
    return Rotation(versions=versions, files=len(files))


def destroy_version(session: Session, key_id: str, version: int) -> None:
    """Destroy version `version` of `key_id`; refused while any file's key material
    still needs it, or if it is the newest version."""
    _admin(session, "destroying master key versions")
    keys = master_keys(session)
    if key_id == SIGNING_KEY:
        retire_finished_grants(session)  # finished jobs' grants are dead already: end them
        signed = _active_grants_by_version(session).get(version, [])
        if signed:
            raise StateError(
                f"version {version} of the grant-signing key signed {len(signed)} grant(s) "
                "that are still active; their jobs would fail at their next read",
                reasons=[f"grant {g}" for g in signed[:10]]
                + ([f"... and {len(signed) - 10} more"] if len(signed) > 10 else []),
                fix="wait until they expire or their jobs end (tre keys grants --active), "
                "or revoke them (tre keys revoke GRANT --reason ...)",
            )
    users = _usage(_files(session, dataset_versions(session.conn))).get(key_id, {}).get(version, [])
    if users:
        shown = [str(p.relative_to(session.home.data)) for p in users[:10]]
        raise StateError(
            f"version {version} of master key {key_id!r} still wraps the key material of "
            f"{len(users)} file(s)",
            reasons=shown + ([f"... and {len(users) - 10} more"] if len(users) > 10 else []),
            fix=f"rotate first (tre keys rotate --key {key_id}); destroying it now would make "
            "those files unreadable",
        )
    keys.destroy(key_id, version)
    with session.write() as conn:
        session.record(conn, "keys.destroy", f"key:{key_id}", Role.ADMIN, {"version": version})


def configure_kms(
    session: Session,
    kind: str,
    *,
    module: str | None = None,
    token: str | None = None,
    pin_file: Path | None = None,
    hsm_paths: tuple[str, ...] = (),
) -> KmsSettings:
    """Choose where this home's master keys live; tested before it is saved.

    Refused once datasets are ingested: their keys are in the current system, and
    moving keys between systems is not supported (re-ingest into a new home instead).
    """
    _admin(session, "configuring key management")
    if kind not in KINDS:
        raise InputError(f"unknown key management {kind!r}", fix=f"use one of: {', '.join(KINDS)}")
    config = session.home.config
    if kind != config.kms and dataset_versions(session.conn):
        raise StateError(
            f"this home already holds datasets whose keys are in its {config.kms} key store",
            fix="choose the key management before the first ingest; tre cannot move "
            "master keys between systems",
        )
    if kind == "pkcs11":
        missing = [
            n
            for n, v in (("--module", module), ("--token", token), ("--pin-file", pin_file))
            if not v
        ]
        if missing:
            raise InputError(
                f"a PKCS#11 key store needs {', '.join(missing)}",
                fix="e.g. --module /usr/lib/softhsm/libsofthsm2.so --token tre "
                "--pin-file /etc/tre/hsm.pin",
            )
    for path in hsm_paths:
        if kind != "pkcs11" or not Path(path).is_absolute() or not Path(path).exists():
            raise InputError(
                f"--hsm-path {path!r}: "
                + (
                    "only a PKCS#11 key store takes it"
                    if kind != "pkcs11"
                    else "give an absolute path that exists"
                ),
                fix="name the folders your HSM's client reads and writes, e.g. "
                "--hsm-path /etc/hsm-client (SoftHSM's are found without it)",
            )
    updated = config.model_copy(
        update={
            "kms": kind,
            "pkcs11_paths": [str(Path(p).resolve()) for p in hsm_paths],
            "pkcs11_module": str(module) if kind == "pkcs11" else None,
            "pkcs11_token": token if kind == "pkcs11" else None,
            "pkcs11_pin_file": str(Path(str(pin_file)).absolute()) if kind == "pkcs11" else None,
        }
    )
    home = Home(session.home.root, updated)
    sandboxed = config.isolation == "sandbox"
    if sandboxed:
        # The new key system is opened by a second key service beside the running one,
        # so the chain is checked under the old audit key and keyed under the new one.
        next_socket, next_state = keyservice.next_instance(home)
        keyservice.ensure_running(home, next_socket, next_state)
        settings = KmsSettings.service(str(next_socket), home.keys.absolute())
    else:
        probe = Session(home=home, db=session.db, actor=session.actor, today=session.today)
        settings = kms_settings(probe)
    keys = open_master_keys(settings)
    version = keys.signing_version()  # reaches the store, creates the signing key
    keys.verify(b"probe", keys.sign(b"probe", version), version)
    before = session.home.kms_settings()
    moved = home.backing_kms_settings() != session.home.backing_kms_settings()
    if sandboxed and not moved:
        keyservice.stop(home, sock=next_socket, state=next_state)
    details = {"kms": kind, "module": updated.pkcs11_module, "token": updated.pkcs11_token}
    old_mac = audit.mac_of(session.conn)
    try:
        with session.write() as conn:
            if moved:  # the audit key moves with the master keys: pin the chain so far
                details |= audit.rekey(conn, audit.keyed_with(settings))
            session.record(conn, "keys.configure", "home", Role.ADMIN, details)
            _save_config(home)  # inside the transaction: config and chain key change together
    except BaseException:
        audit.use_key(session.conn, old_mac)
        raise
    session.home = home
    if moved:
        # The pin covers every event the old audit key made: it is not needed any more.
        open_master_keys(before).retire_audit_key()
    if sandboxed and moved:
        # The home's own key service now opens the new system; the second one goes.
        keyservice.stop(home)
        keyservice.stop(home, sock=next_socket, state=next_state)
        keyservice.ensure_running(home)
        settings = home.kms_settings()
        audit.use_key(session.conn, audit.keyed_with(settings))
    return settings


def _save_config(home: Home) -> None:
    home.save_config()
