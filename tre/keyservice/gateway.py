"""The key gateway: how a job on another node reaches the key service (issue 25).

The key service listens only on a Unix socket on the service node, with no network,
and tells the TRE from a job by the peer's uid. A compute node on another host cannot
reach that socket (the test cluster's nodes cannot either: slurm/devcluster/nodes.sh).
The gateway is its one door from the network:

- it listens with **mutual TLS**: a peer must show a client certificate from the home's
  CA (`tre.keys.tls_ca`), which names one job; no certificate, no connection;
- it relays only what a job may ask (`ping`, `authorise`, `unwrap`), and only under a
  grant **made for the job its certificate names**: a token copied out of one job is
  refused on another's connection. The key service then checks the grant itself, as
  for any job (signature, expiry, revocation, the key named);
- it holds no key, no signing key and no PIN, and is no admin to the key service: it
  runs as a user the service counts as a job, so even a bug here could not wrap, sign
  or revoke;
- **no peer holds up another**: at most `PER_JOB` connections per job and `TOTAL` in
  all, a deadline on every message once it has begun and on every reply, and a bounded
  pool of threads for the calls to the key service. Refused peers are counted per job
  for the audit log (`drain_refusals`).

The wire format is the key service's own (a 4-byte length and a JSON object).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import struct
import sys
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tre.errors import PermissionDenied, TreError
from tre.keys.grants import GrantError, GrantInvalid, peek
from tre.keys.keyclient import MAX_MESSAGE, ServiceMasterKeys
from tre.keys.tls_ca import CA_CERT, job_of

log = logging.getLogger("tre.keyservice.gateway")

JOB_OPS = frozenset({"ping", "authorise", "unwrap"})
PER_JOB = 32
TOTAL = 512
WORKERS = 8
MESSAGE_SECONDS = 5.0
IDLE_SECONDS = 120.0
SEND_SECONDS = 5.0
HANDSHAKE_SECONDS = 5.0
MAX_REFUSALS = 10_000
HOME_CHECK_SECONDS = 2.0
CERT = "gateway-cert.pem"
KEY = "gateway-key.pem"
_HEAD = struct.Struct(">I")


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """TLS 1.2 or later, a client certificate from the home's CA required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls_dir / CERT, tls_dir / KEY)
    context.load_verify_locations(tls_dir / CA_CERT)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class Gateway:
    """Relays a job's requests to the key service at `upstream`, under the rules above."""

    def __init__(self, upstream: str, per_job: int = PER_JOB, total: int = TOTAL) -> None:
        self.keys = ServiceMasterKeys(upstream)  # one connection per pool thread
        self.per_job = per_job
        self.total = total
        self.held: Counter[int] = Counter()
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="gateway")
        self.refusals: deque[dict[str, Any]] = deque(maxlen=MAX_REFUSALS)
        self.open: set[asyncio.Task[None]] = set()  # one per connection, ended at stop

    def drain_refusals(self) -> list[dict[str, Any]]:
        """The refusals since the last call, oldest first (job, reason; never a token)."""
        taken = list(self.refusals)
        self.refusals.clear()
        return taken

    def _refuse(self, job: int | None, reason: str, node: str = "", op: str = "") -> None:
        """Keep a refusal, and report it to the key service for the TRE's audit log."""
        self.refusals.append({"job": job or 0, "reason": reason})
        log.info("refused job %s from %s: %s", job or "unknown", node or "?", reason)
        try:
            self.keys.call(
                "gateway_refused",
                refused_op=op,
                reason="GatewayRefused",
                message=reason,
                via={"job": job or 0, "node": node},
            )
        except TreError:
            log.warning("could not report a refusal to the key service")

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One peer, from its handshake (done by asyncio) to its last message."""
        job = _job_of(writer)
        node = _node_of(writer)
        loop = asyncio.get_running_loop()
        if job is None:
            await loop.run_in_executor(
                self.pool, self._refuse, None, "its certificate names no job", node
            )
            writer.close()
            return
        if self.held[job] >= self.per_job or sum(self.held.values()) >= self.total:
            why = f"too many connections (at most {self.per_job} per job)"
            await loop.run_in_executor(self.pool, self._refuse, job, why, node, "connect")
            writer.close()
            return
        self.held[job] += 1
        task = asyncio.current_task()
        if task is not None:
            self.open.add(task)
        try:
            await self._serve(job, node, reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # a peer that is too slow, or went: only it is cut off
        except asyncio.CancelledError:
            pass  # the gateway stops
        finally:
            self.held[job] -= 1
            if task is not None:
                self.open.discard(task)
            writer.close()

    async def _serve(
        self, job: int, node: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout(IDLE_SECONDS):
                    head = await reader.readexactly(_HEAD.size)
            except asyncio.IncompleteReadError:
                return  # closed between messages
            (size,) = _HEAD.unpack(head)
            if size > MAX_MESSAGE:
                why = f"it announced a message of {size:,} bytes"
                await loop.run_in_executor(self.pool, self._refuse, job, why, node)
                return
            async with asyncio.timeout(MESSAGE_SECONDS):
                body = await reader.readexactly(size)
            try:
                request = json.loads(body)
            except ValueError:
                request = None
            if not isinstance(request, dict):
                why = "it sent a message that is not a JSON object"
                await loop.run_in_executor(self.pool, self._refuse, job, why, node)
                return
            reply = await loop.run_in_executor(self.pool, self.relay, request, job, node)
            data = json.dumps(reply, separators=(",", ":")).encode()
            writer.write(_HEAD.pack(len(data)) + data)
            async with asyncio.timeout(SEND_SECONDS):
                await writer.drain()

    def relay(self, request: dict[str, Any], job: int, node: str = "") -> dict[str, Any]:
        """In a pool thread: the key service's reply to `request` from `job` on `node`,
        or why the gateway refuses it. The key service is told which job and node it
        came through (`via`), so its own refusals are audited with them; the gateway
        reports its own to it (`gateway_refused`)."""
        op = str(request.get("op", ""))
        try:
            self._check(op, request, job)
        except TreError as exc:
            self._refuse(job, f"{op[:40]}: {type(exc).__name__}", node, op[:40])
            return _error_reply(exc)
        args = {k: v for k, v in request.items() if k not in ("op", "via")}
        try:
            return self.keys.call(op, **args, via={"job": job, "node": node})
        except TreError as exc:  # the key service refused (and audits it, with `via`)
            if isinstance(exc, GrantError | PermissionDenied):
                self.refusals.append({"job": job, "reason": f"{op[:40]}: {type(exc).__name__}"})
            return _error_reply(exc)

    def _check(self, op: str, request: dict[str, Any], job: int) -> None:
        """What the gateway itself refuses: another operation than a job's, or a grant
        not made for the job the connection's certificate names."""
        if op not in JOB_OPS:
            raise PermissionDenied(
                f"through the key gateway a job may only ping, authorise and unwrap, "
                f"not {op[:40]!r}"
            )
        if op == "ping":
            return
        grant = peek(str(request.get("token", "")))  # the key service checks it fully
        if grant.job != job:
            raise GrantInvalid(
                f"the grant was not made for job {job}, whose certificate this connection shows"
            )


def _error_reply(exc: TreError) -> dict[str, Any]:
    return {
        "error": {
            "type": type(exc).__name__,
            "message": exc.message,
            "reasons": exc.reasons,
            "fix": exc.fix,
        }
    }


def _node_of(writer: asyncio.StreamWriter) -> str:
    """The peer's address: the node the job's process is on."""
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _job_of(writer: asyncio.StreamWriter) -> int | None:
    """The job the peer's (verified) client certificate names."""
    certificate = writer.get_extra_info("peercert") or {}
    for field in certificate.get("subject", ()):
        for key, value in field:
            if key == "commonName":
                return job_of(str(value))
    return None


async def serve(
    gateway: Gateway, host: str, port: int, context: ssl.SSLContext, stop: asyncio.Event
) -> None:
    """Listen at `host`:`port` until `stop` is set."""
    server = await asyncio.start_server(
        gateway.connection,
        host,
        port,
        ssl=context,
        ssl_handshake_timeout=HANDSHAKE_SECONDS,
        limit=MAX_MESSAGE + _HEAD.size,
    )
    async with server:
        log.info("key gateway listening on %s:%d", host, port)
        await stop.wait()
        for task in list(gateway.open):
            task.cancel()
        await asyncio.gather(*gateway.open, return_exceptions=True)


async def _stop_when_deleted(folder: Path, stop: asyncio.Event) -> None:
    """Stop once the TLS folder is deleted (a removed home, or a gateway started again
    with a new one): its link count drops to 0."""
    while not stop.is_set():
        await asyncio.sleep(HOME_CHECK_SECONDS)
        try:
            gone = os.stat(folder).st_nlink == 0
        except OSError:
            gone = True
        if gone:
            log.info("its TLS folder was deleted: stopping")
            stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tre.keyservice.gateway")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="the key service's socket")
    parser.add_argument("--tls-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    host, _, port = str(args.listen).rpartition(":")
    context = server_context(args.tls_dir)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        watching = asyncio.create_task(_stop_when_deleted(args.tls_dir, stop))
        await serve(Gateway(args.upstream), host, int(port), context, stop)
        watching.cancel()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
