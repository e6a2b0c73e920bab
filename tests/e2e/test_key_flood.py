"""A job that floods the key service's socket holds up no other job (issue 23).

The flood runs as a job does: in the sandbox, as tre-job, in the cgroup that names its
job, with the key service's socket bound where a job sees it. It opens hundreds of
connections, each sending half a length prefix, a 4 GiB prefix or garbage, and holds
them. Meanwhile an ordinary job runs through the real dispatcher and key service."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from slurm import cgroups, sandbox
from tests.conftest import EXAMPLES
from tre import audit
from tre.keyservice.process import ensure_running
from tre.models import JobState
from tre.runtime import runtime_paths
from tre.service.grants import record_refusals
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow

FLOOD = textwrap.dedent("""
    import socket, sys, time
    held, cut = [], 0
    for i in range(300):
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2)
            sock.connect("/run/tre/keys.sock")
            sent = [b"\\x00\\x00", b"\\xff\\xff\\xff\\xff", b"\\x00\\x00\\x00\\x05hello"]
            sock.sendall(sent[i % 3])
            held.append(sock)
        except OSError:
            cut += 1
    print("opened", len(held), flush=True)
    time.sleep(float(sys.argv[1]))
""")


def test_a_job_flooding_the_key_socket_holds_up_no_other_job(home, cli, tmp_path):
    s = Session.open(home, "ada")
    try:
        ensure_running(s.home)
        tag = s.home.tag
        key_socket = s.home.key_socket
    finally:
        s.close()
    job_dir = tmp_path / "flood"
    (job_dir / "out").mkdir(parents=True)
    (job_dir / "input.json").write_text("{}")
    user = sandbox.job_user()
    runtime, hide = runtime_paths()
    name = f"tre-{tag}-99"  # the cgroup that names the flooding job to the key service
    groups = cgroups.make_cgroups(name, None)
    plan = sandbox.Plan(
        job_dir=job_dir,
        out_dir=job_dir / "out",
        data=(),
        key_socket=key_socket,
        uid=user.pw_uid,
        gid=user.pw_gid,
        memory_bytes=1 << 30,
        cpu_seconds=120,
        runtime=runtime,
        hide=hide,
        program=(sys.executable, "-c", FLOOD, "40"),
    )
    flood = subprocess.Popen(
        sandbox.command(replace(plan, cgroups=groups)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert flood.stdout is not None
        assert flood.stdout.readline().startswith("opened")  # the flood is on
        submitted = cli("submit", EXAMPLES / "health_by_area.yaml", who="rita")
        assert submitted.code == 0, submitted.err
        job_id = int(submitted.out.split()[1])
        ran = cli("run", "--once", who="ada")
        assert ran.code == 0, ran.out + ran.err
        assert flood.poll() is None, "the flood was still holding its connections"
    finally:
        flood.kill()
        flood.wait()
        cgroups.kill_cgroups(groups)
    s = Session.open(home, "ada")
    try:
        assert repo.get_job(s.conn, job_id).state is JobState.AWAITING_REVIEW
        record_refusals(s)
        refused = [
            e
            for e in audit.events(s.conn, limit=10_000)
            if e.action == "keys.refused" and e.object == "job:99"
        ]
        assert refused, "the flood was not recorded"
        said = " ".join(str(e.details.get("message")) for e in refused)
        assert "too many connections: job tre-" in said or "broke the protocol" in said
    finally:
        s.close()
