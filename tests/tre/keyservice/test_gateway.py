"""The key gateway (tre/keyservice/gateway.py), for real: a key service on a Unix socket
with a real key store, the gateway in front of it with mutual TLS on loopback, and jobs
reaching it through the same client a job uses."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tre.errors import PermissionDenied
from tre.keys.grants import (
    GrantExpired,
    GrantInvalid,
    GrantRevoked,
    KeyNotGranted,
    make_grant,
    peek,
    sign_grant,
)
from tre.keys.keyclient import GatewayTls, KeyServiceDown, ServiceMasterKeys
from tre.keys.masterkeys import LocalMasterKeys
from tre.keys.tls_ca import CA_CERT, ensure_ca, issue_job, issue_server
from tre.keyservice import gateway as gateway_module
from tre.keyservice.server import KeyService
from tre.keyservice.transport import serve_forever

KEY = "residents.attribute"


class Cluster:
    """The service node's side: key store, key service, CA and gateway."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        keys_root = tmp_path / "keys"
        keys_root.mkdir(mode=0o700)
        self.keys = LocalMasterKeys(keys_root)
        self.keys.ensure(KEY)
        self.keys.ensure("residents.identifier")
        self.wrapped = self.keys.wrap(KEY, b"sixteen byte key")
        # The test's own uid is no admin of this service: it is treated as a job.
        service = KeyService(self.keys, keys_root, admin_uids={2**31})
        self.service = service
        self.socket = str(tmp_path / "keys.sock")
        self.stop_service = threading.Event()
        threading.Thread(
            target=serve_forever,
            args=(service, self.socket, self.stop_service, lambda pid: ""),
            daemon=True,
        ).start()
        self.tls = tmp_path / "tls"
        ensure_ca(self.tls)
        server = issue_server(self.tls, ["127.0.0.1"])
        (self.tls / gateway_module.CERT).write_bytes(server.cert)
        (self.tls / gateway_module.KEY).write_bytes(server.key)
        self.gateway = gateway_module.Gateway(self.socket, per_job=2)
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        listener.close()
        self.loop = asyncio.new_event_loop()
        self.stop_gateway = asyncio.Event()
        context = gateway_module.server_context(self.tls)
        threading.Thread(
            target=self.loop.run_until_complete,
            args=(
                gateway_module.serve(
                    self.gateway, "127.0.0.1", self.port, context, self.stop_gateway
                ),
            ),
            daemon=True,
        ).start()
        _wait_for_port(self.port)

    def grant(self, job: int, keys: tuple[str, ...] = (KEY,)) -> str:
        return sign_grant(
            make_grant(holder=f"job {job}", keys=keys, lifetime=60, job=job), self.keys
        )

    def client(self, job: int) -> ServiceMasterKeys:
        folder = self.root / f"job{job}"
        folder.mkdir(exist_ok=True)
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        issued = issue_job(self.tls, job, until)
        (folder / "cert.pem").write_bytes(issued.cert)
        (folder / "key.pem").write_bytes(issued.key)
        tls = GatewayTls(str(self.tls / CA_CERT), str(folder / "cert.pem"), str(folder / "key.pem"))
        return ServiceMasterKeys(f"tls://127.0.0.1:{self.port}", tls=tls)

    def drain(self) -> list[dict]:
        """The key service's refusals since the last call (as the TRE drains them)."""
        return list(self.service.handle({"op": "drain_refusals"}, 2**31, 1)["refusals"])

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_gateway.set)
        self.stop_service.set()


def _wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            threading.Event().wait(0.05)
    raise AssertionError("the gateway did not start")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    yield made
    made.close()


def test_a_job_unwraps_its_granted_key_through_the_gateway(cluster: Cluster) -> None:
    client = cluster.client(7)
    token = cluster.grant(7)
    assert client.ping()["store"]
    assert client.authorise(token, [KEY]).job == 7
    assert client.unwrap_with_grant(token, KEY, cluster.wrapped) == b"sixteen byte key"


def test_a_grant_of_another_job_is_refused_on_this_jobs_connection(cluster: Cluster) -> None:
    stolen = cluster.grant(8)  # copied out of job 8
    with pytest.raises(GrantInvalid, match="not made for job 7"):
        cluster.client(7).unwrap_with_grant(stolen, KEY, cluster.wrapped)
    assert {"job": 7, "reason": "unwrap: GrantInvalid"} in cluster.gateway.drain_refusals()
    # Reported to the key service, for the TRE's audit log: the job its certificate
    # names, and the node it came from.
    (refused,) = cluster.drain()
    assert refused["reason"] == "GatewayRefused" and refused["op"] == "unwrap"
    assert (refused["via_job"], refused["node"]) == (7, "127.0.0.1")


def test_the_key_services_own_refusals_name_the_job_and_node_it_came_through(
    cluster: Cluster,
) -> None:
    token = cluster.grant(7, keys=("residents.identifier",))
    with pytest.raises(KeyNotGranted):
        cluster.client(7).unwrap_with_grant(token, KEY, cluster.wrapped)
    (refused,) = cluster.drain()
    assert refused["reason"] == "KeyNotGranted"
    assert (refused["via_job"], refused["node"], refused["job"]) == (7, "127.0.0.1", 7)


def test_only_the_gateway_may_say_where_a_request_came_from(cluster: Cluster) -> None:
    forged = {"op": "gateway_refused", "via": {"job": 99, "node": "10.0.0.9"}}
    said = cluster.service.handle(dict(forged), uid=4242, pid=1)
    assert said["error"]["type"] == "NotTheTre"
    token = cluster.grant(7, keys=("residents.identifier",))
    asked = {"op": "unwrap", "token": token, "key": KEY, "wrapped": cluster.wrapped}
    cluster.service.handle({**asked, "via": {"job": 99, "node": "x"}}, uid=4242, pid=1)
    refusals = cluster.drain()
    assert [r.get("via_job") for r in refusals] == [None, None]  # the claim was dropped


def test_only_what_a_job_may_ask_is_relayed(cluster: Cluster) -> None:
    client = cluster.client(7)
    for ask in (lambda: client.sign(b"a grant of my own"), lambda: client.key_ids()):
        with pytest.raises(PermissionDenied, match="may only ping, authorise and unwrap"):
            ask()
    # The key service still checks the grant itself: a key it does not name is refused.
    token = cluster.grant(7, keys=("residents.identifier",))
    with pytest.raises(KeyNotGranted):
        client.unwrap_with_grant(token, KEY, cluster.wrapped)


def test_no_certificate_from_the_homes_ca_no_connection(cluster: Cluster, tmp_path: Path) -> None:
    # A certificate the job made itself, from a CA of its own.
    other = tmp_path / "other-ca"
    ensure_ca(other)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    forged = issue_job(other, 7, until)
    (other / "cert.pem").write_bytes(forged.cert)
    (other / "key.pem").write_bytes(forged.key)
    tls = GatewayTls(str(cluster.tls / CA_CERT), str(other / "cert.pem"), str(other / "key.pem"))
    client = ServiceMasterKeys(f"tls://127.0.0.1:{cluster.port}", tls=tls)
    with pytest.raises(KeyServiceDown):
        client.ping()
    # And without any certificate at all.
    context = ssl.create_default_context(cafile=str(cluster.tls / CA_CERT))
    with (
        socket.create_connection(("127.0.0.1", cluster.port)) as raw,
        pytest.raises((ssl.SSLError, ConnectionError)),
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock,
    ):
        tls_sock.sendall(b"\0\0\0\x02{}")
        if not tls_sock.recv(4):
            raise ConnectionError("closed")


def test_connections_are_bounded_per_job(cluster: Cluster) -> None:
    held = [cluster.client(7) for _ in range(2)]
    for client in held:
        client.ping()  # each holds its connection open
    with pytest.raises(KeyServiceDown):
        cluster.client(7).ping()
    assert any(r["job"] == 7 and "too many" in r["reason"] for r in cluster.gateway.refusals)
    cluster.client(9).ping()  # another job is not held up


def test_revocation_and_expiry_act_at_the_next_unwrap_through_the_gateway(
    cluster: Cluster,
) -> None:
    client = cluster.client(7)
    token = cluster.grant(7)
    assert client.unwrap_with_grant(token, KEY, cluster.wrapped) == b"sixteen byte key"
    grant_id = peek(token).id
    revoked = cluster.service.handle({"op": "revoke", "grant": grant_id, "reason": "x"}, 2**31, 1)
    assert "error" not in revoked
    with pytest.raises(GrantRevoked):  # on the same open connection
        client.unwrap_with_grant(token, KEY, cluster.wrapped)
    expired = sign_grant(
        make_grant(holder="job 7", keys=(KEY,), lifetime=60, job=7, not_after=time.time() - 1),
        cluster.keys,
    )
    with pytest.raises(GrantExpired):
        client.unwrap_with_grant(expired, KEY, cluster.wrapped)
