"""The test cluster's compute nodes (slurm/devcluster/nodes.sh, issue 25): three slurmd,
each in network, UTS and mount namespaces of its own on a private bridge, fenced by the
site's nftables rules (slurm/devcluster/compute-fence.nft). What a real cluster's
compute node is to tre: another host, which reaches the service node only where the
site lets it, and which cannot see the service node's key service socket."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, cli_for
from tests.e2e.test_slurm import job, settle
from tre.models import JobState
from tre.store import repo

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SERVICE = "10.77.0.1"
NODES = ("node1", "node2", "node3")


def _in_node(node: str, code: str) -> str:
    """Run Python `code` in a compute node's network namespace; what it prints."""
    done = subprocess.run(
        ["ip", "netns", "exec", f"tre-{node}", "python3", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


CONNECT = textwrap.dedent("""
    import socket, time
    started = time.monotonic()
    try:
        socket.create_connection(({host!r}, {port}), timeout=5).close()
        print("connected", round(time.monotonic() - started, 1))
    except OSError as exc:
        print(type(exc).__name__, round(time.monotonic() - started, 1))
""")


def test_each_compute_node_is_a_host_of_its_own_that_slurm_runs_jobs_on(tmp_path: Path):
    out = tmp_path / "where.out"
    tmp_path.chmod(0o755)
    script = tmp_path / "where.sh"
    script.write_text(
        "#!/bin/bash\n"
        "srun --ntasks-per-node=1 sh -c 'echo \"$(hostname) $(ls -A /run/tre | wc -l)\"'\n"
    )
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-p", "nodes", "-N", "3", "-o", str(out), str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["scontrol", "-o", "show", "job", job], capture_output=True, text=True
        ).stdout
        if "JobState=COMPLETED" in state or "JobState=FAILED" in state:
            break
        time.sleep(0.5)
    assert "JobState=COMPLETED" in state, state
    lines = sorted(out.read_text().split("\n")[:-1])
    # Three hosts by their own names, and none sees a key service socket.
    assert lines == [f"{node} 0" for node in NODES]


def test_a_compute_node_reaches_only_what_the_sites_fence_lets_it():
    # A listener on the service node's bridge address, where the tre API could be.
    api = socket.create_server((SERVICE, 0))
    api.settimeout(0.2)
    port = api.getsockname()[1]
    try:
        for node in NODES:
            # slurmctld's port is open to it ...
            assert _in_node(node, CONNECT.format(host=SERVICE, port=6817)).startswith("connected")
            # ... another port of the service node is refused at once, by the node's
            # own fence (nothing reaches the listener) ...
            said = _in_node(node, CONNECT.format(host=SERVICE, port=port))
            assert said.startswith("ConnectionRefusedError"), said
            assert float(said.split()[1]) < 2
            # ... and beyond the compute network there is no route at all.
            said = _in_node(node, CONNECT.format(host="192.0.2.1", port=80))
            assert said.startswith("OSError") or said.startswith("Network"), said
            routes = subprocess.run(
                ["ip", "-n", f"tre-{node}", "route"], capture_output=True, text=True
            ).stdout
            assert "default" not in routes
        with pytest.raises(TimeoutError):
            api.accept()
    finally:
        api.close()
    # The other nodes are reachable (Slurm's steps and a job's Dask cluster).
    assert _in_node("node1", CONNECT.format(host="10.77.0.12", port=6818)).startswith("connected")


def test_a_job_spread_over_the_nodes_reads_its_data_through_the_key_gateway(
    nodes_home: Path, capsys, cli, home
):
    ncli = cli_for(nodes_home, capsys)
    assert ncli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    settle(nodes_home, timeout=240)
    done = job(nodes_home, 1)
    assert done.state is JobState.AWAITING_REVIEW, done.reason
    # It ran on more than one compute node, none of which can see the key service's
    # socket: every key it used came through the gateway, under its own certificate.
    slurm_id = done.handle["slurm_job_id"]
    shown = subprocess.run(
        ["scontrol", "-o", "show", "job", str(slurm_id)], capture_output=True, text=True
    ).stdout
    names = _node_of_the_job(slurm_id)
    assert len(names) >= 2 and all(n.startswith("node") for n in names), names
    # Submitted as its slot's job user (sudo -u, docs/slurm.md): Slurm ran it as that
    # user, never as root or the TRE's account.
    user = f"tre-job-{done.handle['slot']}"
    assert done.handle["slurm_user"] == user
    assert f"UserId={user}(" in shown
    # Once it ended, its slot's group reads nothing it was given, nor the log it wrote.
    folder = nodes_home / "jobs" / "000001"
    for path in (folder, folder / "input.json", folder / "slurm"):
        assert path.stat().st_gid == 0 and not path.stat().st_mode & 0o077, path
    assert not (folder / "gateway-key.pem").exists() and (folder / "slurm").is_dir()
    given = json.loads((nodes_home / "jobs/000001/input.json").read_text())["sources"]
    kms = {dict(s["kms"])["socket"] for s in given.values()}
    assert kms == {"tls://10.77.0.1:7643"}  # no Unix socket: the gateway, with its certificate
    assert "held for the output checkers" in ncli("logs", "1", who="rita").out
    status = ncli("keys", "service", "status", who="ada")
    assert "Its key gateway listens at 10.77.0.1:7643" in status.out, status.err
    stopped = ncli("keys", "service", "stop", who="ada")
    assert "Stopped the key gateway." in stopped.out, stopped.err
    assert "No key gateway runs" in ncli("keys", "service", "status", who="ada").out
    # The same table as on the embedded default.
    assert cli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    assert cli("run", "--once", who="ada").code == 0
    relative = "jobs/000001/outputs/residents_by_area/residents_by_area.csv"
    assert (nodes_home / relative).read_text() == (home / relative).read_text()


def test_hostile_code_on_a_compute_node_gets_no_key_and_no_other_port(
    nodes_home: Path, capsys, tmp_path: Path
):
    """The hostile probe (tests/e2e/test_hostile.py) as a python step on the compute
    nodes: its own granted key through the gateway, nothing else; another job's grant
    is refused by the gateway itself (its certificate names another job); the service
    node's other ports and anything beyond the compute network are refused."""
    from tests.e2e.test_hostile import PROBE, _assert_got_nothing, _output, _python_job

    ncli = cli_for(nodes_home, capsys)
    assert ncli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    settle(nodes_home, timeout=240)
    first = json.loads((nodes_home / "jobs/000001/input.json").read_text())
    other_token = first["sources"]["residents"]["token"]  # job 1's, copied
    api = socket.create_server((SERVICE, 0))  # where the tre API could listen
    api.settimeout(0.2)
    targets = {
        "signing_key": str(nodes_home / "keys" / "tre.grant-signing.v1.key"),
        "state_db": str(nodes_home / "state.db"),
        "tre_yaml": str(nodes_home / "tre.yaml"),
        "shadow": "/etc/shadow",
        "key_socket": "/run/tre/keys.sock",
        # Job 1's folder on the shared filesystem: its input (grant) and its gateway key.
        "other_input": str(nodes_home / "jobs" / "000001" / "input.json"),
        "other_gateway_key": str(nodes_home / "jobs" / "000001" / "gateway-key.pem"),
    }
    code = (
        PROBE.replace("TARGETS_HERE", repr(targets))
        .replace("OTHER_TOKEN_HERE", repr(other_token))
        .replace(
            "ADDRESSES_HERE",
            repr({"service_api": (SERVICE, api.getsockname()[1]), "outside": ("192.0.2.1", 80)}),
        )
    )
    spec = _python_job(tmp_path, "probe", code, ["local_authority", "age_band"])
    try:
        submitted = ncli("submit", spec, who="rita")
        assert submitted.code == 0, submitted.err
        settle(nodes_home, timeout=240)
        with pytest.raises(TimeoutError):
            api.accept()  # nothing reached the service node's other port
    finally:
        api.close()
    probed = job(nodes_home, 2)
    assert probed.state is JobState.AWAITING_REVIEW, probed.reason
    report = _output(nodes_home, 2, "probe", "probe.json")
    _assert_got_nothing(report, targets)
    # Job 1's grant, on job 2's connection: the gateway refuses it (the key service
    # would have said GrantRevoked: job 1 has ended).
    assert report["replayed"] == "refused: GrantInvalid"
    for name in ("service_api", "outside"):
        assert report[name].startswith("refused"), (name, report[name])
    # Every refusal is in the audit log, on job 2, with the node it came from.
    from tre import audit
    from tre.service.session import Session

    s = Session.open(nodes_home, "ada")
    try:
        refused = [e for e in audit.events(s.conn, obj="job:2") if e.action == "keys.refused"]
    finally:
        s.close()
    reasons = {e.details["reason"] for e in refused}
    assert {"GatewayRefused", "KeyNotGranted", "GrantInvalid"} <= reasons, reasons
    assert all(str(e.details["node"]).startswith("10.77.0.1") for e in refused), refused


def test_the_cluster_check_says_what_a_compute_node_reaches(capsys, tmp_path: Path):
    from tests.conftest import cli_for as make_cli

    check = make_cli(tmp_path, capsys)("cluster", "check", "--profile", "local-nodes")
    said = " ".join(check.out.split())
    assert check.code == 0, check.out
    assert "key gateway from a node" in said and "10.77.0.1:7643 reachable" in said
    assert "no way out" in said and "an address outside the cluster is not reachable" in said
    assert "sandbox on a node" in said and "bubblewrap starts a sandbox" in said
    # As a job runs: submitted through sudo as a job user, whose unprivileged
    # bubblewrap is the one that started.
    assert "jobs run as their job user (tre-job-0), submitted through sudo" in said
    # slurm-cluster: its schedulers' ports on the service node, open to the nodes ...
    check = make_cli(tmp_path, capsys)("cluster", "check", "--profile", "local-nodes-cluster")
    said = " ".join(check.out.split())
    assert check.code == 0, check.out
    assert "job schedulers from a node" in said and "10.77.0.1:7650 reachable" in said
    # ... its probe a Slurm job of a job user, as its workers are, sandboxed unprivileged.
    assert "jobs run as their job user (tre-job-0), as workers do" in said
    assert "bubblewrap starts a sandbox" in said
    # ... and a range the site's fence does not open is found out.
    site = tmp_path / "closed-ports.yaml"
    profiles = Path(__file__).parents[2] / "slurm" / "profiles"
    text = (profiles / "local-nodes-cluster.yaml").read_text()
    site.write_text(text.replace("scheduler_ports: 7650-7665", "scheduler_ports: 7700-7715"))
    check = make_cli(tmp_path, capsys)("cluster", "check", "--profile", str(site))
    said = " ".join(check.out.split())
    assert check.code != 0
    assert "10.77.0.1:7700 not reachable" in said and "7700-7715" in said


def _as_job_user_on_node2(user: str, *command: str) -> subprocess.CompletedProcess[str]:
    """`command` on compute node 2 as `user`, outside any sandbox: what a job user's
    process there could do on the shared filesystem."""
    return subprocess.run(
        [
            *("ip", "netns", "exec", "tre-node2"),
            *("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"),
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_running_job_s_folder_is_closed_to_every_other_job_user(nodes_home: Path, capsys):
    """Two jobs run at once, each as its own slot's job user (submitted through sudo),
    on the shared filesystem: from node 2, each job user reaches its own job's input and
    nothing of the other's (input, gateway key), nor the TRE's own files."""
    from tre.service.dispatcher import Dispatcher
    from tre.service.session import Session
    from tre.store import repo

    ncli = cli_for(nodes_home, capsys)
    for _ in range(2):
        assert ncli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    s = Session.open(nodes_home, "ada")
    try:
        Dispatcher(s, max_running=2).tick()  # starts both
        running = [repo.get_job(s.conn, job_id) for job_id in (1, 2)]
    finally:
        s.close()
    assert [j.state for j in running] == [JobState.RUNNING] * 2, [j.reason for j in running]
    assert running[0].handle["slot"] != running[1].handle["slot"]
    for me, other in ((running[0], running[1]), (running[1], running[0])):
        user = me.handle["slurm_user"]
        mine = nodes_home / "jobs" / f"{me.id:06d}"
        theirs = nodes_home / "jobs" / f"{other.id:06d}"
        own = _as_job_user_on_node2(user, "cat", str(mine / "input.json"))
        assert own.returncode == 0 and '"sources"' in own.stdout, own.stderr  # it can reach
        for path in (
            theirs / "input.json",
            theirs / "gateway-key.pem",
            nodes_home / "state.db",
            nodes_home / "tre.yaml",
            nodes_home / "keys",
        ):
            tried = _as_job_user_on_node2(user, "cat", str(path))
            assert tried.returncode != 0 and "Permission denied" in tried.stderr, (user, path)
        listed = _as_job_user_on_node2(user, "ls", str(nodes_home / "jobs"))
        assert listed.returncode != 0  # it cannot even list which jobs there are
    settle(nodes_home, timeout=240)
    assert [job(nodes_home, i).state for i in (1, 2)] == [JobState.AWAITING_REVIEW] * 2


def test_slurm_cluster_workers_on_the_nodes_reach_their_scheduler_through_the_fence(
    nodes_cluster_home: Path, capsys, cli, home
):
    """slurm-cluster across the fenced nodes: the engine and its scheduler on the service
    node, on its slot's port (the one the nodes' fence opens for it); each worker a
    Slurm job of the job user on a compute node, reading keys through the gateway."""
    ccli = cli_for(nodes_cluster_home, capsys)
    assert ccli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    settle(nodes_cluster_home, timeout=240)
    done = job(nodes_cluster_home, 1)
    assert done.state is JobState.AWAITING_REVIEW, done.reason
    user = done.handle["slurm_user"]
    assert user == f"tre-job-{done.handle['slot']}"
    settings = json.loads((nodes_cluster_home / "jobs/000001/cluster.json").read_text())
    assert settings["scheduler_port"] == 7650 + done.handle["slot"]
    shown = subprocess.run(
        ["scontrol", "-o", "show", "job"], capture_output=True, text=True
    ).stdout.splitlines()
    workers = [line for line in shown if f"JobName={done.handle['worker_jobs']} " in line]
    assert workers, "no worker job ran"
    for line in workers:
        fields = dict(t.split("=", 1) for t in line.split() if "=" in t)
        assert fields["UserId"].startswith(f"{user}("), line
        assert fields["NodeList"].startswith("node"), line
    # The same table as on the embedded default.
    assert cli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    assert cli("run", "--once", who="ada").code == 0
    relative = "jobs/000001/outputs/residents_by_area/residents_by_area.csv"
    assert (nodes_cluster_home / relative).read_text() == (home / relative).read_text()


def _node_of_the_job(slurm_id: int) -> list[str]:
    shown = subprocess.run(
        ["scontrol", "-o", "show", "job", str(slurm_id)], capture_output=True, text=True
    ).stdout
    nodes = next((t.split("=", 1)[1] for t in shown.split() if t.startswith("NodeList=")), "")
    if not nodes or nodes == "(null)":
        return []
    return subprocess.run(
        ["scontrol", "show", "hostnames", nodes], capture_output=True, text=True
    ).stdout.split()


@pytest.mark.timeout(300)
def test_a_node_cut_from_the_network_mid_job_is_retried_on_the_others(
    nodes_home: Path, capsys, tmp_path: Path
):
    """Cut one compute node of a running job off the bridge (its link down: packets
    vanish, nothing is refused): Slurm finds the node gone (SlurmdTimeout, 20 s on the
    test cluster), ends the allocation NODE_FAIL, and tre tries the job again on the
    nodes left, per the profile's retries. Nothing waits for the walltime."""
    from tests.e2e.test_lifecycle import slow_job, wait_for
    from tre.service.dispatcher import Dispatcher
    from tre.service.session import Session

    for node in NODES:  # every node in service, so that the retry has two to run on
        wait_for(lambda n=node: _in_service(n), timeout=90, what=f"{node} in service")
    ncli = cli_for(nodes_home, capsys)
    job_id = slow_job(tmp_path, ncli, seconds=20)
    cut = ""
    started = time.monotonic()
    s = Session.open(nodes_home, "ada")
    try:
        dispatcher = Dispatcher(s)  # one dispatcher, here: the test cuts between passes
        while dispatcher.tick():
            assert time.monotonic() - started < 240, "the job never ended"
            current = repo.get_job(s.conn, job_id)
            sid = current.handle.get("slurm_job_id")
            names = _node_of_the_job(sid) if sid and not cut else []
            if len(names) >= 2 and current.state is JobState.RUNNING:
                cut = names[-1]
                subprocess.run(["ip", "link", "set", f"tre-v{cut[-1]}", "down"], check=True)
            time.sleep(0.3)
    finally:
        s.close()
        if cut:
            _reconnect(cut)
    assert cut, "the job never ran on two nodes"
    finished = job(nodes_home, job_id)
    logs = "".join(
        p.read_text()[-3000:]
        for p in sorted((nodes_home / "jobs" / f"{job_id:06d}").rglob("*.out"))
    )
    assert finished.state is JobState.AWAITING_REVIEW, f"{finished.reason}\n{logs}"
    assert finished.attempts == 2
    assert cut not in _node_of_the_job(finished.handle["slurm_job_id"])
    assert time.monotonic() - started < 240  # never the walltime (10 minutes)


def _node_state(node: str) -> str:
    shown = subprocess.run(
        ["scontrol", "-o", "show", "node", node], capture_output=True, text=True
    ).stdout
    return next((t.split("=", 1)[1] for t in shown.split() if t.startswith("State=")), "")


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _in_service(node: str) -> bool:
    state = _node_state(node)
    return not any(word in state for word in ("NOT_RESPONDING", "DOWN", "DRAIN", "*"))


def _reconnect(node: str) -> None:
    """Put a cut node back on the bridge and in service for the tests after: Slurm must
    hear from it again (no longer NOT_RESPONDING) before a resume holds (else it marks
    it DOWN later, under another test); a node whose tasks could not be killed while cut
    is drained, and resumed too."""
    subprocess.run(["ip", "link", "set", f"tre-v{node[-1]}", "up"], check=True)
    # Its slurmd started again registers at once (ReturnToService=2 takes it back), where
    # Slurm would otherwise hear from it only at its next ping, a minute or so later.
    pids = subprocess.run(
        ["ip", "netns", "pids", f"tre-{node}"], capture_output=True, text=True
    ).stdout.split()
    slurmd = [p for p in pids if _comm(p) == "slurmd"]
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for pid in slurmd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_comm(p) == "slurmd" for p in slurmd):
            time.sleep(0.2)
    started = Path(__file__).parents[2] / "slurm" / "devcluster" / "start.sh"
    subprocess.run(["bash", str(started)], capture_output=True, timeout=120, check=True)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        if _in_service(node):
            return
        if "NOT_RESPONDING" not in _node_state(node):
            subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False)
        time.sleep(1)
    raise AssertionError(f"{node} did not come back into service: {_node_state(node)}")


def test_hostile_code_in_a_slurm_cluster_job_gets_no_key_and_no_network(
    nodes_cluster_home: Path, capsys, tmp_path: Path
):
    """The hostile probe (tests/e2e/test_hostile.py) as a python step of a slurm-cluster
    job across the fenced nodes. Its code never reaches a compute node: it runs first,
    on the service node, in the local sandbox as the code user, with no network at all
    and nothing of Slurm's; keys only through the key service's socket and its grant.
    So it gets its own granted key and nothing else: no file of the home, no other
    job's grant, neither the service node's other ports nor anything beyond."""
    from tests.e2e.test_hostile import PROBE, _assert_got_nothing, _output, _python_job

    ccli = cli_for(nodes_cluster_home, capsys)
    assert ccli("submit", EXAMPLES / "health_by_area.yaml", who="rita").code == 0
    settle(nodes_cluster_home, timeout=240)
    first = json.loads((nodes_cluster_home / "jobs/000001/input.json").read_text())
    other_token = first["sources"]["residents"]["token"]  # job 1's, copied
    api = socket.create_server((SERVICE, 0))  # where the tre API could listen
    api.settimeout(0.2)
    targets = {
        "signing_key": str(nodes_cluster_home / "keys" / "tre.grant-signing.v1.key"),
        "state_db": str(nodes_cluster_home / "state.db"),
        "tre_yaml": str(nodes_cluster_home / "tre.yaml"),
        "shadow": "/etc/shadow",
        "munge_key": "/etc/munge/munge.key",
        "other_input": str(nodes_cluster_home / "jobs" / "000001" / "input.json"),
    }
    code = (
        PROBE.replace("TARGETS_HERE", repr(targets))
        .replace("OTHER_TOKEN_HERE", repr(other_token))
        .replace(
            "ADDRESSES_HERE",
            repr(
                {
                    "service_api": (SERVICE, api.getsockname()[1]),
                    "slurmctld": (SERVICE, 6817),
                    "outside": ("192.0.2.1", 80),
                }
            ),
        )
    )
    spec = _python_job(tmp_path, "probe", code, ["local_authority", "age_band"])
    try:
        submitted = ccli("submit", spec, who="rita")
        assert submitted.code == 0, submitted.err
        settle(nodes_cluster_home, timeout=240)
        with pytest.raises(TimeoutError):
            api.accept()  # nothing reached the service node's other port
    finally:
        api.close()
    probed = job(nodes_cluster_home, 2)
    assert probed.state is JobState.AWAITING_REVIEW, probed.reason
    report = _output(nodes_cluster_home, 2, "probe", "probe.json")
    _assert_got_nothing(report, targets)
    assert report["replayed"].startswith("refused"), report["replayed"]  # job 1's grant
    for name in ("service_api", "slurmctld", "outside"):
        assert report[name].startswith("refused"), (name, report[name])
    from tre import audit
    from tre.service.session import Session

    s = Session.open(nodes_cluster_home, "ada")
    try:
        refused = [e for e in audit.events(s.conn, obj="job:2") if e.action == "keys.refused"]
    finally:
        s.close()
    assert "KeyNotGranted" in {e.details["reason"] for e in refused}, refused


def _connect_here_as(user: str, host: str, port: int) -> str:
    """Connect from the service node (this machine) as `user`, outside any sandbox:
    what a job user's process here (slurm-cluster's engine) could reach."""
    gid = pwd.getpwnam(user).pw_gid  # a code user's group is its slot's, not its own
    done = subprocess.run(
        [
            *("setpriv", f"--reuid={user}", f"--regid={gid}", "--init-groups"),
            *("python3", "-c", CONNECT.format(host=host, port=port)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_service_node_fences_its_job_users_off_the_api_and_other_jobs():
    """The service node's fence (slurm/devcluster/service-fence.nft, the site's part):
    a job user here reaches its own slot's scheduler port and this machine's other
    ports (its job's Dask), but not another slot's scheduler port, the tre API's port,
    or anything beyond the compute network; nobody else's traffic is touched."""
    listeners = [socket.create_server((SERVICE, port)) for port in (7650, 7651, 8000)]
    local = socket.create_server(("127.0.0.1", 0))
    try:
        outcome = {
            "own scheduler": _connect_here_as("tre-job-1", SERVICE, 7651),
            "slot 0's scheduler": _connect_here_as("tre-job-1", SERVICE, 7650),
            "the tre API": _connect_here_as("tre-job-1", SERVICE, 8000),
            "a local port": _connect_here_as("tre-job-1", "127.0.0.1", local.getsockname()[1]),
            "outside": _connect_here_as("tre-job-1", "192.0.2.1", 80),
            "code user, a scheduler": _connect_here_as("tre-code-1", SERVICE, 7651),
            "root, the tre API": _connect_here_as("root", SERVICE, 8000),
        }
    finally:
        for listener in (*listeners, local):
            listener.close()
    reached = {name for name, said in outcome.items() if said.startswith("connected")}
    assert reached == {"own scheduler", "a local port", "root, the tre API"}, outcome
    for name in ("slot 0's scheduler", "the tre API", "outside", "code user, a scheduler"):
        refused, seconds = outcome[name].split()
        assert refused == "ConnectionRefusedError" and float(seconds) < 2, (name, outcome)
