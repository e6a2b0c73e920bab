"""The key service's socket: one event loop, a bounded pool of workers, bounded peers.

Jobs are hostile, and every job reaches the same socket, so no peer may hold up another:

- **Connections are bounded per peer.** A connection is admitted by the peer's uid and
  job, which the kernel tells (SO_PEERCRED, and the job's cgroup): at most
  `PER_JOB` open connections per job, `PER_UID` per uid outside any job, `TOTAL` for
  everyone but the TRE. The TRE (an admin uid) is always admitted. One refused is closed
  at once and recorded as a refusal (`keys.refused` in the audit log, with the job).
- **A message has a deadline.** Once its first byte has come, the rest of a message
  must come within `MESSAGE_SECONDS`; a message over `MAX_MESSAGE` bytes, or one that
  is not a JSON object, breaks the protocol. A peer that breaks it is cut off and
  recorded. A connection idle for `IDLE_SECONDS` between messages is closed quietly
  (clients dial again).
- **No thread per connection.** One thread reads every connection through a selector;
  a complete request goes to a pool of `WORKERS` threads (an HSM call may block), and
  a connection reads nothing more until its reply is sent (clients ask one thing at a
  time). `ping` is answered by the loop itself, so the TRE can tell a busy service
  (it answers ping) from a dead one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import selectors
import signal
import socket
import struct
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from tre.keys.keyclient import MAX_MESSAGE

log = logging.getLogger("tre.keyservice")

PER_JOB = 32
PER_UID = 128
TOTAL = 512
WORKERS = 8
MESSAGE_SECONDS = 5.0
IDLE_SECONDS = 120.0
SEND_SECONDS = 5.0
_HEAD = struct.Struct(">I")


class Service(Protocol):
    """What the loop serves (`tre.keyservice.server.KeyService`)."""

    admin_uids: frozenset[int]

    def handle(self, request: dict[str, Any], uid: int, pid: int) -> dict[str, Any]: ...

    def refuse_peer(self, uid: int, pid: int, job: str, reason: str) -> None: ...


@dataclass(eq=False)
class _Peer:
    sock: socket.socket
    uid: int
    pid: int
    job: str  # the job whose sandbox the peer is in ('' for none)
    admin: bool
    buffer: bytearray = field(default_factory=bytearray)
    started: float | None = None  # when the first byte of the current message came
    last: float = field(default_factory=time.monotonic)
    busy: bool = False  # a request is with a worker
    dead: bool = False  # its reply could not be sent: closed when it comes back

    @property
    def quota(self) -> str:
        return f"job {self.job}" if self.job else f"uid {self.uid}"


class Loop:
    """Serve `service` on the listening socket `listener` until `stop` is set."""

    def __init__(
        self,
        service: Service,
        listener: socket.socket,
        stop: threading.Event,
        job_of: Any,
    ) -> None:
        self.service = service
        self.listener = listener
        self.stop = stop
        self.job_of = job_of  # pid -> the job whose sandbox it is in ('' for none)
        self.selector = selectors.DefaultSelector()
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="keys")
        self.peers: set[_Peer] = set()
        self.held: Counter[str] = Counter()  # open connections by quota
        self.ready: queue.SimpleQueue[_Peer] = queue.SimpleQueue()  # replies sent
        self._wake_read, self._wake_write = socket.socketpair()

    def run(self) -> None:
        self.listener.setblocking(False)
        self._wake_read.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, "listen")
        self.selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        previous = None
        if threading.current_thread() is threading.main_thread():
            # A signal (SIGTERM: stop) wakes the loop at once, not at its next timeout:
            # tre waits for a stopped service to be gone, once per home (tests: hundreds).
            self._wake_write.setblocking(False)
            previous = signal.set_wakeup_fd(self._wake_write.fileno(), warn_on_full_buffer=False)
        try:
            while not self.stop.is_set():
                for key, _events in self.selector.select(timeout=0.5):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            self._wake_read.recv(4096)
                    else:
                        self._read(key.data)
                self._resume()
                self._expire()
        finally:
            if previous is not None:
                signal.set_wakeup_fd(previous)
            self.pool.shutdown(wait=False, cancel_futures=True)
            for peer in list(self.peers):
                self._close(peer)
            self.selector.close()
            self._wake_read.close()
            self._wake_write.close()

    # -- admission ---------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(64):  # a burst is taken in turns with the peers already here
            try:
                sock, _address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: shed the oldest idle peer
                log.warning("cannot accept a connection: %s", exc.strerror)
                return
            try:
                uid, pid = _peer_credentials(sock)
            except OSError:
                sock.close()
                continue
            admin = uid in self.service.admin_uids
            peer = _Peer(sock, uid, pid, "" if admin else self.job_of(pid), admin)
            if not admin and (why := self._over(peer)):
                self.service.refuse_peer(uid, pid, peer.job, why)
                sock.close()
                continue
            sock.setblocking(False)
            self.peers.add(peer)
            if not admin:
                self.held[peer.quota] += 1
                self.held["*"] += 1
            self.selector.register(sock, selectors.EVENT_READ, peer)

    def _over(self, peer: _Peer) -> str:
        limit = PER_JOB if peer.job else PER_UID
        if self.held[peer.quota] >= limit:
            return f"too many connections: {peer.quota} already holds {limit}"
        if self.held["*"] >= TOTAL:
            return f"too many connections: the key service already serves {TOTAL}"
        return ""

    # -- reading -----------------------------------------------------------------------

    def _read(self, peer: _Peer) -> None:
        try:
            data = peer.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(peer)
            return
        if not data:
            if peer.buffer:
                self._broke(peer, "it closed the connection in the middle of a message")
            else:
                self._close(peer)
            return
        now = time.monotonic()
        peer.last = now
        if not peer.buffer:
            peer.started = now
        peer.buffer += data
        self._take(peer)

    def _take(self, peer: _Peer) -> None:
        """Hand the peer's complete messages, one at a time, to a worker (ping: answer)."""
        while not peer.busy and peer in self.peers and len(peer.buffer) >= _HEAD.size:
            (size,) = _HEAD.unpack_from(peer.buffer)
            if size > MAX_MESSAGE:
                self._broke(peer, f"it announced a message of {size:,} bytes")
                return
            if len(peer.buffer) < _HEAD.size + size:
                return
            body = bytes(peer.buffer[_HEAD.size : _HEAD.size + size])
            del peer.buffer[: _HEAD.size + size]
            peer.started = time.monotonic() if peer.buffer else None
            try:
                request = json.loads(body)
            except ValueError:
                request = None
            if not isinstance(request, dict):
                self._broke(peer, "it sent a message that is not a JSON object")
                return
            if request.get("op") == "ping":  # answered here: a busy pool still answers
                reply = _frame(self.service.handle(request, peer.uid, peer.pid))
                try:
                    sent = peer.sock.send(reply)  # never waits: the loop serves everyone
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self._close(peer)
                    return
                if sent != len(reply):
                    self._broke(peer, "it does not read its replies")
                    return
                continue
            peer.busy = True
            self.selector.unregister(peer.sock)
            self.pool.submit(self._serve, peer, request)

    def _serve(self, peer: _Peer, request: dict[str, Any]) -> None:
        """In a worker: answer one request, then give the peer back to the loop."""
        try:
            reply = self.service.handle(request, peer.uid, peer.pid)
        except Exception as exc:  # handle() answers errors itself; this is a bug
            log.error("a %r request failed: %s", request.get("op"), type(exc).__name__)
            reply = {"error": {"type": "PlatformError", "message": "the key service failed"}}
        self._send(peer, reply)

    def _send(self, peer: _Peer, reply: dict[str, Any]) -> None:
        """In a worker: send the reply (a peer that will not read it within
        SEND_SECONDS is dropped), then give the peer back to the loop."""
        try:
            peer.sock.settimeout(SEND_SECONDS)
            peer.sock.sendall(_frame(reply))
            peer.sock.setblocking(False)
        except OSError:
            peer.dead = True
        self.ready.put(peer)
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")

    def _resume(self) -> None:
        """Peers whose reply a worker sent: read from them again (or close them)."""
        while True:
            try:
                peer = self.ready.get_nowait()
            except queue.Empty:
                return
            if peer.dead:
                self._close(peer, registered=False)
                continue
            peer.busy = False
            peer.last = time.monotonic()
            self.selector.register(peer.sock, selectors.EVENT_READ, peer)
            self._take(peer)

    # -- deadlines and endings -----------------------------------------------------------

    def _expire(self) -> None:
        now = time.monotonic()
        for peer in list(self.peers):
            if peer.busy:
                continue
            if peer.started is not None and now - peer.started > MESSAGE_SECONDS:
                self._broke(peer, f"a message did not arrive whole within {MESSAGE_SECONDS:g}s")
            elif peer.started is None and now - peer.last > IDLE_SECONDS and not peer.admin:
                self._close(peer)

    def _broke(self, peer: _Peer, why: str) -> None:
        """Cut off a peer that broke the protocol, and record it."""
        self.service.refuse_peer(peer.uid, peer.pid, peer.job, f"broke the protocol: {why}")
        self._close(peer)

    def _close(self, peer: _Peer, *, registered: bool = True) -> None:
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        if not peer.admin:
            self.held[peer.quota] -= 1
            self.held["*"] -= 1
        if registered:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(peer.sock)
        with contextlib.suppress(OSError):
            peer.sock.close()


def _peer_credentials(sock: socket.socket) -> tuple[int, int]:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return uid, pid


def _frame(reply: dict[str, Any]) -> bytes:
    data = json.dumps(reply, separators=(",", ":")).encode()
    return _HEAD.pack(len(data)) + data


def serve_forever(service: Service, path: str, stop: threading.Event, job_of: Any) -> None:
    """Listen at `path` (mode 0666: who may do what is decided per peer) until `stop`."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)  # noqa: S103 - reachable only where it is bound
    listener.listen(1024)
    try:
        Loop(service, listener, stop, job_of).run()
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
