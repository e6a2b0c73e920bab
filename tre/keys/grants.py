"""Key grants: signed, short-lived tokens that say which master keys a job may use.

The service issues one grant per job when it dispatches it (`tre.service.keys`): the
master keys of exactly the columns the job declared (all approved for its project)
and the footer keys of their datasets, until the job's walltime is over, and never
past the end of the project's approval. The token travels in the job's input; the
KMS client (`tre.keys.kms`) and the reader check it before every unwrap and every
read:

    tre-grant.1.<claims, base64url JSON>.<HMAC-SHA256, base64url>

The HMAC is made with a signing key that lives with the master keys (`MasterKeys.sign`:
a 0600 file, or a key on the HSM) and is checked where master keys are used; the claims
name the signing key's version (`signed_with`), so the key can be rotated while grants
signed with the old version run on, and an old version destroyed once none is active, so a job
cannot widen its grant by editing its input, and a token stolen from a job of project
A names only A's keys. Grants are revoked by the service (project suspended, closed
or expired; job ended) by writing `TRE_HOME/keys/revoked/<grant id>` with the reason;
the next read or unwrap under a revoked grant fails with that reason.

    PermissionDenied
    └── GrantError          a job's key grant does not allow what it asked
        ├── GrantInvalid    not a grant, or its signature does not match
        ├── GrantExpired    past its expiry
        ├── GrantRevoked    revoked by the service, with the reason
        └── KeyNotGranted   valid, but does not cover this master key
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from tre.errors import PermissionDenied
from tre.keys.masterkeys import SIGNING_KEY, KeyVersionError, MasterKeys

__all__ = [
    "Grant",
    "GrantError",
    "GrantExpired",
    "GrantInvalid",
    "GrantRevoked",
    "KeyNotGranted",
    "Revocations",
    "authorise",
    "make_grant",
    "new_grant_id",
    "peek",
    "sign_grant",
    "verify_token",
]

PREFIX = "tre-grant.1"
_GRANT_ID = re.compile(r"^[0-9a-f]{16}$")
_verified: dict[str, Grant] = {}
_lock = threading.Lock()


class GrantError(PermissionDenied):
    """A job's key grant does not allow what was asked."""


class GrantInvalid(GrantError):
    """The token is not a grant tre signed (or it was changed)."""


class GrantExpired(GrantError):
    """The grant is past its expiry."""


class GrantRevoked(GrantError):
    """The service revoked the grant; the reason says why."""


class KeyNotGranted(GrantError):
    """The grant is valid but does not cover the master key asked for."""


@dataclass(frozen=True)
class Grant:
    """What a grant allows: plain claims, signed into a token by `sign_grant`."""

    id: str
    holder: str  # "job 12", or the admin and purpose of a grant made by hand
    project: str  # "" for a grant not made for a project's job
    job: int  # 0 for a grant not made for a job
    keys: tuple[str, ...]  # master key ids
    issued: int  # unix seconds
    expires: int  # unix seconds
    signed_with: int = 1  # the signing key's version (grants made before rotation: 1)

    @property
    def expires_at(self) -> datetime:
        """`expires` as a UTC datetime."""
        return datetime.fromtimestamp(self.expires, UTC)

    def describe(self) -> str:
        """Who holds it, as a person reads it: 'the key grant of job 12 (project p)'."""
        project = f" (project {self.project!r})" if self.project else ""
        return f"the key grant of {self.holder}{project}"


def new_grant_id() -> str:
    """A fresh, unguessable grant id (also the revocation file's name)."""
    return secrets.token_hex(8)


def make_grant(
    *,
    holder: str,
    keys: Iterable[str],
    lifetime: float,
    project: str = "",
    job: int = 0,
    not_after: float | None = None,
) -> Grant:
    """A new grant for `keys`, from now for `lifetime` seconds (never past `not_after`)."""
    now = int(time.time())
    expires = now + max(int(lifetime), 1)
    if not_after is not None:
        expires = min(expires, int(not_after))
    return Grant(
        id=new_grant_id(),
        holder=holder,
        project=project,
        job=job,
        keys=tuple(sorted(set(keys))),
        issued=now,
        expires=expires,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_grant(grant: Grant, keys: MasterKeys) -> str:
    """The token for `grant`, signed with the newest version of the key-management
    system's signing key (named in the claims, so a later rotation does not void it)."""
    version = keys.signing_version()
    claims = asdict(replace(grant, signed_with=version))
    claims["keys"] = sorted(set(grant.keys))
    body = f"{PREFIX}.{_b64(json.dumps(claims, sort_keys=True, separators=(',', ':')).encode())}"
    return f"{body}.{_b64(keys.sign(body.encode(), version))}"


def _invalid(why: str) -> GrantInvalid:
    return GrantInvalid(
        f"the job's key grant is not valid: {why}",
        fix="grants are made by tre when it starts a job and cannot be edited; "
        "submit the job again",
    )


def peek(token: str) -> Grant:
    """The claims of `token` WITHOUT checking its signature (for messages and listings)."""
    parts = str(token).split(".")
    if len(parts) != 4 or ".".join(parts[:2]) != PREFIX:
        raise _invalid("it is not a tre key grant")
    try:
        claims = json.loads(_unb64(parts[2]))
        claims["keys"] = tuple(claims["keys"])
        grant = Grant(**claims)
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise _invalid("its claims cannot be read") from exc
    if not _GRANT_ID.fullmatch(grant.id):
        raise _invalid("its id is malformed")
    if type(grant.signed_with) is not int or grant.signed_with < 1:
        raise _invalid("the version of its signing key is malformed")
    return grant


def verify_token(token: str, keys: MasterKeys) -> Grant:
    """The grant in `token` if tre signed it; GrantInvalid otherwise. Cached per process."""
    with _lock:
        found = _verified.get(token)
    if found is not None:
        return found
    grant = peek(token)
    body, _, signature = str(token).rpartition(".")
    try:
        good = keys.verify(body.encode(), _unb64(signature), grant.signed_with)
    except KeyVersionError:
        newest = keys.current(SIGNING_KEY) or 0
        raise _invalid(
            f"version {grant.signed_with} of the key that signed it "
            + (
                "was destroyed after a rotation"
                if grant.signed_with < newest
                else "is not in this key store (it was made elsewhere)"
            )
        ) from None
    except (ValueError, binascii.Error):
        good = False
    if not good:
        raise _invalid("its signature does not match (it was changed, or made elsewhere)")
    with _lock:
        if len(_verified) > 1024:  # one per job a worker served; never grows much
            _verified.clear()
        _verified[token] = grant
    return grant


def forget_verified() -> None:
    """Forget verified tokens (tests)."""
    with _lock:
        _verified.clear()


class Revocations:
    """Revoked grants: one 0600 file per grant in TRE_HOME/keys/revoked, holding the reason.

    Files rather than database rows because they are checked by every worker, on every
    read, on every node that mounts TRE_HOME: a `stat` is cheap and needs no database.
    """

    def __init__(self, keys_root: Path | str) -> None:
        self.root = Path(keys_root) / "revoked"

    def _path(self, grant_id: str) -> Path:
        if not _GRANT_ID.fullmatch(grant_id):
            raise _invalid("its id is malformed")
        return self.root / grant_id

    def revoke(self, grant_id: str, reason: str) -> None:
        """Record that `grant_id` is revoked, and why (durably, before returning)."""
        path = self._path(grant_id)
        self.root.mkdir(mode=0o700, exist_ok=True)
        tmp = self.root / f".{grant_id}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(reason)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        owner = os.stat(self.root.parent)
        if os.geteuid() == 0 and owner.st_uid != 0:
            # The key service reads it under its own user, which owns the key store.
            os.chown(self.root, owner.st_uid, owner.st_gid)
            os.chown(path, owner.st_uid, owner.st_gid)
        folder = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def reason(self, grant_id: str) -> str | None:
        """Why `grant_id` was revoked, or None if it was not."""
        try:
            return self._path(grant_id).read_text(encoding="utf-8").strip() or "revoked"
        except FileNotFoundError:
            return None


def check_usable(grant: Grant, revocations: Revocations, now: float | None = None) -> None:
    """Raise GrantRevoked or GrantExpired unless `grant` may be used now."""
    reason = revocations.reason(grant.id)
    if reason is not None:
        raise GrantRevoked(
            f"{grant.describe()} was revoked: {reason}",
            fix="a revoked grant cannot be used again; once the project is approved "
            "again, submit the job again",
        )
    now = time.time() if now is None else now
    if now >= grant.expires:
        raise GrantExpired(
            f"{grant.describe()} expired at {grant.expires_at:%Y-%m-%d %H:%M:%S} UTC",
            fix="a job's grant lasts as long as its walltime and never past its project's "
            "expiry; submit the job again (with a longer walltime if it ran out)",
        )


def authorise(
    token: str,
    keys: MasterKeys,
    revocations: Revocations,
    key_ids: Iterable[str],
    labels: dict[str, str] | None = None,
) -> Grant:
    """Check `token` allows every one of `key_ids` now; the grant, or a GrantError.

    `labels` names a key for people ('column age of care'); key ids are shown otherwise.
    """
    if not token:
        raise GrantInvalid(
            "no key grant was given, so no key can be unwrapped",
            fix="reads of secured data need a grant: jobs get one when tre starts them",
        )
    grant = verify_token(token, keys)
    check_usable(grant, revocations)
    missing = sorted(set(key_ids) - set(grant.keys))
    if missing:
        labels = labels or {}
        raise KeyNotGranted(
            f"{grant.describe()} does not cover {len(missing)} key(s) this read needs",
            reasons=[labels.get(k, f"master key {k!r}") for k in missing],
            fix="a job's grant covers the columns its spec declares, approved for its "
            "project; declare the column (if the project is approved for it) and submit again",
        )
    return grant
