"""The key service's socket under hostile peers: bounded connections, message deadlines,
a protocol breach cut off and recorded, ping answered however busy the workers are.

`FakeService` stands in for `KeyService` (the transport's contract is `handle` and
`refuse_peer`); everything else is real: a Unix socket, the event loop, its workers."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from tre.keyservice import transport


class FakeService:
    """Answers `ping` and `echo`; `slow` holds a worker until `release` is set."""

    def __init__(self, admin_uids: frozenset[int] = frozenset()) -> None:
        self.admin_uids = admin_uids
        self.refused: list[tuple[int, str, str]] = []
        self.release = threading.Event()

    def handle(self, request, uid, pid):
        if request.get("op") == "slow":
            self.release.wait(30)
        return {"op": request.get("op"), "uid": uid}

    def refuse_peer(self, uid, pid, job, reason):
        self.refused.append((uid, job, reason))


@pytest.fixture
def served(tmp_path: Path, monkeypatch):
    """A loop serving a FakeService at a socket; the caller's uid is no admin."""
    monkeypatch.setattr(transport, "PER_UID", 4)
    monkeypatch.setattr(transport, "PER_JOB", 2)
    monkeypatch.setattr(transport, "MESSAGE_SECONDS", 0.5)
    service = FakeService()
    path = str(tmp_path / "keys.sock")
    stop = threading.Event()
    jobs = {"job": ""}
    thread = threading.Thread(
        target=transport.serve_forever,
        args=(service, path, stop, lambda pid: jobs["job"]),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while True:  # listening once a connection is taken
        try:
            _dial(path).close()
            break
        except (FileNotFoundError, ConnectionRefusedError):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    time.sleep(0.1)  # that probe's slot is given back
    yield service, path, jobs
    service.release.set()
    stop.set()
    thread.join(timeout=5)


def _dial(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def _ask(sock: socket.socket, op: str) -> dict:
    data = json.dumps({"op": op}).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)
    (size,) = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))
    return json.loads(sock.recv(size, socket.MSG_WAITALL))


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_a_peer_over_its_connection_limit_is_cut_off_and_recorded_once(served):
    service, path, _jobs = served
    held = [_dial(path) for _ in range(4)]
    assert _ask(held[0], "echo") == {"op": "echo", "uid": _uid()}
    extra = [_dial(path) for _ in range(3)]
    assert all(_closed(sock) for sock in extra)
    refusal = (_uid(), "", f"too many connections: uid {_uid()} already holds 4")
    assert service.refused == [refusal] * 3
    # The ones it holds still work, and a freed slot is usable again.
    assert _ask(held[3], "echo")["op"] == "echo"
    held[0].close()
    time.sleep(0.3)
    assert _ask(_dial(path), "echo")["op"] == "echo"


def test_a_job_is_held_to_its_own_limit(served):
    service, path, jobs = served
    jobs["job"] = "tre-abcdef-7"
    held = [_dial(path) for _ in range(2)]
    assert _closed(_dial(path))
    assert service.refused[-1][1:] == (
        "tre-abcdef-7",
        "too many connections: job tre-abcdef-7 already holds 2",
    )
    assert _ask(held[1], "ping")["op"] == "ping"


def test_half_a_length_prefix_is_cut_off_at_its_deadline_and_others_are_served(served):
    service, path, _jobs = served
    stalled = _dial(path)
    stalled.sendall(b"\x00\x00")
    other = _dial(path)
    for _ in range(5):
        assert _ask(other, "echo")["op"] == "echo"
    time.sleep(1.0)
    assert _closed(stalled)
    assert "did not arrive whole within 0.5s" in service.refused[-1][2]


@pytest.mark.parametrize(
    ("sent", "said"),
    [
        (b"\xff\xff\xff\xff", "it announced a message of 4,294,967,295 bytes"),
        (struct.pack(">I", 5) + b"hello", "not a JSON object"),
        (struct.pack(">I", 2) + b"[]", "not a JSON object"),
    ],
)
def test_a_peer_that_breaks_the_protocol_is_cut_off_and_recorded(served, sent, said):
    service, path, _jobs = served
    sock = _dial(path)
    sock.sendall(sent)
    assert _closed(sock)
    assert said in service.refused[-1][2] and "broke the protocol" in service.refused[-1][2]


def test_ping_is_answered_while_every_worker_is_busy(served):
    service, path, _jobs = served
    # More slow requests than workers (and peers within their limits: admins here).
    service.admin_uids = frozenset({_uid()})
    slow = [_dial(path) for _ in range(transport.WORKERS + 2)]
    for sock in slow:
        data = json.dumps({"op": "slow"}).encode()
        sock.sendall(struct.pack(">I", len(data)) + data)
    time.sleep(0.3)
    started = time.monotonic()
    assert _ask(_dial(path), "ping")["op"] == "ping"
    assert time.monotonic() - started < 2  # not queued behind the workers
    service.release.set()
    assert all(_ask_reply(sock)["op"] == "slow" for sock in slow)


def _ask_reply(sock: socket.socket) -> dict:
    (size,) = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))
    return json.loads(sock.recv(size, socket.MSG_WAITALL))


def _uid() -> int:
    import os

    return os.getuid()


def test_the_key_service_records_a_flood_as_one_refusal_with_a_count(tmp_path):
    from tre.keys.keystore import LocalKeyStore
    from tre.keyservice.server import KeyService

    service = KeyService(LocalKeyStore(tmp_path), tmp_path, {0})
    for _ in range(4500):
        service.refuse_peer(999, 4242, "tre-abcdef-7", "too many connections: job ...")
    service.refuse_peer(999, 4243, "tre-abcdef-8", "broke the protocol: ...")
    refusals = service.handle({"op": "drain_refusals"}, 0, 1)["refusals"]
    assert [(r["sandbox"], r["count"], r["op"]) for r in refusals] == [
        ("tre-abcdef-7", 4500, "connect"),
        ("tre-abcdef-8", 1, "connect"),
    ]


def test_the_key_service_user_must_reach_tres_code_through_every_folder():
    import pwd
    import shutil
    import tempfile

    from tre.keyservice.process import _unreachable_code

    # Not under pytest's own folder, which is 0700 itself.
    tmp_path = Path(tempfile.mkdtemp(prefix="tre-reach-", dir="/tmp"))
    try:
        _check_reach(tmp_path, pwd, _unreachable_code)
    finally:
        shutil.rmtree(tmp_path)


def _check_reach(tmp_path, pwd, _unreachable_code):
    code = tmp_path / "private" / "checkout" / "tre"
    code.mkdir(parents=True)
    for folder in (tmp_path, code.parent, code):
        folder.chmod(0o755)
    (tmp_path / "private").chmod(0o700)  # like root's home folder
    nobody = pwd.struct_passwd(("keys", "x", 54321, 54321, "", "/", "/bin/false"))
    said = _unreachable_code(nobody, (code,))
    assert said.startswith(f"the user uid 54321 cannot enter {tmp_path / 'private'} (mode 0700")
    (tmp_path / "private").chmod(0o711)
    assert _unreachable_code(nobody, (code,)) == ""
