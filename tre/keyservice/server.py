"""The key service: the one process that holds master keys, the signing key and the PIN.

It serves `MasterKeys` (the local key store or an HSM) on a Unix socket, under its own
OS user, to two kinds of caller, told apart by the peer's uid (SO_PEERCRED), which the
caller cannot choose:

- **the TRE** (root, or the uid that owns TRE_HOME): every operation: wrap for ingest,
  rotate, destroy, sign grants, revoke them, read what jobs did;
- **anyone else** (a job's sandboxed processes): `authorise` a grant and `unwrap` under
  it, nothing more. Every unwrap checks the grant there and then: signature, expiry,
  revocation (so a revoked grant's next unwrap is refused), and that it names the key.

It counts what each grant unwrapped and keeps every refusal, with the peer's uid and
pid and what the grant claimed, for the TRE to put in the audit log (`usage`,
`drain_refusals`). It never records key material, and its log carries no tokens.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tre.errors import PermissionDenied, PlatformError, TreError
from tre.keys.grants import GrantError, Revocations, authorise, peek
from tre.keys.keyclient import b64, unb64
from tre.keys.keystore import check_key_id
from tre.keys.masterkeys import MasterKeys
from tre.keyservice.transport import serve_forever

log = logging.getLogger("tre.keyservice")

#: Operations anyone who can reach the socket may ask; the rest are the TRE's only.
JOB_OPS = frozenset({"ping", "authorise", "unwrap"})
MAX_REFUSALS = 10_000  # kept until the TRE drains them; beyond this the oldest go


class NotTheTre(PermissionDenied):
    """A caller that is not the TRE asked for an operation only the TRE may ask."""


class KeyService:
    """The operations, apart from the socket (so they can be tested and timed alone)."""

    def __init__(
        self,
        keys: MasterKeys,
        keys_root: Path,
        admin_uids: set[int],
        gateway_uid: int | None = None,
    ) -> None:
        self.keys = keys
        #: The key gateway's uid (tre/keyservice/gateway.py): the service's own user, as
        #: which the gateway runs. Only it may say which job and node a request came
        #: through (`via`) and report what it refused itself (`gateway_refused`).
        self.gateway_uid = os.getuid() if gateway_uid is None else gateway_uid
        info = os.stat(keys_root)
        #: Which key store it serves (device and inode): a TRE tells a service left over
        #: from a deleted home of the same path from its own.
        self.store = f"{info.st_dev}:{info.st_ino}"
        self.revocations = Revocations(keys_root)
        self.admin_uids = frozenset(admin_uids)
        self._lock = threading.Lock()
        self._usage: dict[str, dict[str, Any]] = {}
        self._refusals: deque[dict[str, Any]] = deque(maxlen=MAX_REFUSALS)
        self.last_request = time.monotonic()
        self._ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": lambda a: {"pid": os.getpid(), "uid": os.getuid(), "store": self.store},
            "authorise": self._authorise,
            "unwrap": self._unwrap,
            "key_ids": lambda a: {"keys": self.keys.key_ids()},
            "versions": lambda a: {"versions": self.keys.versions(_key(a))},
            "ensure": lambda a: {"created": self.keys.ensure(_key(a))},
            "rotate": lambda a: {"version": self.keys.rotate(_key(a))},
            "destroy": self._destroy,
            "wrap": lambda a: {"wrapped": self.keys.wrap(_key(a), unb64(a["data"]))},
            "unwrap_raw": lambda a: {"data": b64(self.keys.unwrap(_key(a), str(a["wrapped"])))},
            "signing_version": lambda a: {"version": self.keys.signing_version()},
            "sign": self._sign,
            "verify": self._verify,
            "audit_mac": self._audit_mac,
            "retire_audit_key": self._retire_audit_key,
            "revoke": self._revoke,
            "usage": self._usage_of,
            "drain_refusals": self._drain,
            "gateway_refused": self._gateway_refused,
        }

    # -- dispatch ---------------------------------------------------------------------

    def handle(self, request: dict[str, Any], uid: int, pid: int) -> dict[str, Any]:
        """One request from peer `uid`/`pid`: the reply, or {"error": ...}."""
        op = str(request.get("op", ""))
        self.last_request = time.monotonic()
        if uid != self.gateway_uid:
            request.pop("via", None)  # only the gateway may say where a request came from
        try:
            action = self._ops.get(op)
            if action is None:
                raise PlatformError(f"the key service has no operation {op!r}")
            if op == "gateway_refused" and uid != self.gateway_uid:
                raise NotTheTre(
                    f"only the key gateway may report its refusals (asked by uid {uid})"
                )
            if op not in (*JOB_OPS, "gateway_refused") and uid not in self.admin_uids:
                raise NotTheTre(
                    f"only the TRE may ask the key service to {op!r} (asked by uid {uid})",
                    fix="jobs may only unwrap under their grant",
                )
            return action({**request, "_uid": uid, "_pid": pid})
        except TreError as exc:
            if isinstance(exc, GrantError | NotTheTre):
                self._refused(op, request, uid, pid, exc)
            return {"error": _error(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            return {
                "error": _error(PlatformError(f"a malformed {op!r} request ({type(exc).__name__})"))
            }

    def _refused(self, op: str, request: dict[str, Any], uid: int, pid: int, exc: TreError) -> None:
        claims: dict[str, Any] = {}
        token = request.get("token")
        if isinstance(token, str):
            try:
                grant = peek(token)  # what the grant *claims*; it may be forged
                claims = {"grant": grant.id, "job": grant.job, "project": grant.project}
            except GrantError:
                claims = {"grant": "", "job": 0, "project": ""}
            with self._lock:
                if claims.get("grant") in self._usage:
                    self._usage[claims["grant"]]["refused"] += 1
        refusal = {
            "at": time.time(),
            "op": op,
            "uid": uid,
            "pid": pid,
            "sandbox": sandbox_of(pid),
            "key": str(request.get("key", ""))[:140],
            "reason": type(exc).__name__,
            "message": exc.message[:300],
            **claims,
            **_via(request),
        }
        with self._lock:
            self._refusals.append(refusal)
        log.warning(
            "refused %s from uid %s pid %s: %s (grant %s)",
            op,
            uid,
            pid,
            type(exc).__name__,
            claims.get("grant", "-"),
        )

    def _gateway_refused(self, a: dict[str, Any]) -> dict[str, Any]:
        """What the key gateway refused itself (a grant of another job, an operation a
        job may not ask, a connection over its bounds), for the audit log."""
        refusal = {
            "at": time.time(),
            "op": str(a.get("refused_op", ""))[:40],
            "uid": a["_uid"],
            "pid": a["_pid"],
            "sandbox": "",
            "key": "",
            "reason": str(a.get("reason", ""))[:60],
            "message": str(a.get("message", ""))[:300],
            **_via(a),
        }
        with self._lock:
            self._refusals.append(refusal)
        return {}

    def refuse_peer(self, uid: int, pid: int, job: str, reason: str) -> None:
        """Record a peer cut off by the transport (too many connections, or a broken
        protocol), for the TRE's audit log (`keys.refused`, with the job)."""
        refusal = {
            "at": time.time(),
            "op": "connect",
            "uid": uid,
            "pid": pid,
            "sandbox": job,
            "key": "",
            "reason": "PeerRefused",
            "message": reason[:300],
        }
        with self._lock:
            last = self._refusals[-1] if self._refusals else None
            same = ("op", "uid", "sandbox", "message")
            if last is not None and all(last.get(k) == refusal[k] for k in same):
                last["count"] = int(last.get("count", 1)) + 1  # a flood is one record
                return
            self._refusals.append({**refusal, "count": 1})
        log.warning("cut off uid %s pid %s (%s): %s", uid, pid, job or "no job", reason)

    # -- what a job may ask -----------------------------------------------------------

    def _authorise(self, a: dict[str, Any]) -> dict[str, Any]:
        keys = [check_key_id(str(k)) for k in a["keys"]]
        labels = {str(k): str(v) for k, v in dict(a.get("labels") or {}).items()}
        grant = authorise(str(a["token"]), self.keys, self.revocations, keys, labels)
        claims = asdict(grant)
        claims["keys"] = list(grant.keys)
        return {"grant": claims}

    def _unwrap(self, a: dict[str, Any]) -> dict[str, Any]:
        key = _key(a)
        grant = authorise(str(a["token"]), self.keys, self.revocations, [key])
        data = self.keys.unwrap(key, str(a["wrapped"]))
        with self._lock:
            usage = self._usage.setdefault(
                grant.id,
                {"job": grant.job, "project": grant.project, "unwraps": {}, "refused": 0},
            )
            usage["unwraps"][key] = usage["unwraps"].get(key, 0) + 1
            usage["uids"] = sorted({*usage.get("uids", []), a["_uid"]})
        return {"data": b64(data)}

    # -- what only the TRE may ask ----------------------------------------------------

    def _destroy(self, a: dict[str, Any]) -> dict[str, Any]:
        self.keys.destroy(_key(a), int(a["version"]))
        return {}

    def _sign(self, a: dict[str, Any]) -> dict[str, Any]:
        version = a.get("version")
        signature = self.keys.sign(unb64(a["data"]), int(version) if version else None)
        return {"signature": b64(signature)}

    def _verify(self, a: dict[str, Any]) -> dict[str, Any]:
        valid = self.keys.verify(unb64(a["data"]), unb64(a["signature"]), int(a["version"]))
        return {"valid": valid}

    def _audit_mac(self, a: dict[str, Any]) -> dict[str, Any]:
        mac = getattr(self.keys, "audit_mac", None)
        if mac is None:
            raise PlatformError("this key service cannot key the audit chain")
        return {"mac": b64(mac(unb64(a["data"])))}

    def _retire_audit_key(self, a: dict[str, Any]) -> dict[str, Any]:
        self.keys.retire_audit_key()
        return {}

    def _revoke(self, a: dict[str, Any]) -> dict[str, Any]:
        self.revocations.revoke(str(a["grant"]), str(a["reason"])[:500])
        return {}

    def _usage_of(self, a: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            found = self._usage.get(str(a["grant"]))
            usage = (
                {**found, "unwraps": dict(found["unwraps"])}
                if found
                else {"unwraps": {}, "refused": 0}
            )
        return {"usage": usage}

    def _drain(self, a: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            drained = list(self._refusals)
            self._refusals.clear()
        return {"refusals": drained}


_SANDBOX_GROUP = re.compile(r"/tre/(tre-[0-9a-f]{6}-[0-9]{1,12})$")


def sandbox_of(pid: int) -> str:
    """The job whose sandbox the process `pid` is in, by its cgroup ('tre-<home>-<job>'),
    or ''. The kernel says it, so a job cannot pass itself off as another."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        found = _SANDBOX_GROUP.search(line)
        if found:
            return found[1]
    return ""


def _key(a: dict[str, Any]) -> str:
    return check_key_id(str(a["key"]))


def _via(request: dict[str, Any]) -> dict[str, Any]:
    """The job (from its client certificate) and node (its address) a request came
    through the gateway from, as the gateway said (`handle` keeps `via` from it alone)."""
    via = request.get("via")
    if not isinstance(via, dict):
        return {}
    job = via.get("job")
    return {
        "via_job": job if isinstance(job, int) and job > 0 else 0,
        "node": str(via.get("node", ""))[:64],
    }


def _error(exc: TreError) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "reasons": exc.reasons,
        "fix": exc.fix,
    }


def serve(service: KeyService, socket_path: Path, stop: threading.Event) -> None:
    """Listen at `socket_path` until `stop` is set (`tre.keyservice.transport`: one event
    loop, a bounded pool of workers, connections bounded per job and per uid)."""
    serve_forever(service, str(socket_path), stop, sandbox_of)
