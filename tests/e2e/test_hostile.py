"""Hostile researcher code against the sandbox and the key service: it must get nothing.

Each attack is a python step, run for real: in the bubblewrap sandbox as the job user,
with keys only through the key service. Each ends in a refusal or a clean failure,
with an audit event where one is due, and nothing of its target reaches the
researcher, the logs they can read, or an output.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slurm import job_users
from tests.conftest import EXAMPLES, PROJECT, cli_for, write_spec
from tests.e2e.test_slurm import settle
from tre.home import Home
from tre.models import JobState
from tre.outcomes import Outcome
from tre.service import jobs as jobs_service
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow

PROBE = textwrap.dedent("""
    import base64
    import json
    import os
    import socket
    from pathlib import Path

    from tre.keys.keysystems import open_master_keys
    from tre.keys.kms import column_key_id
    from tre.keys.masterkeys import KmsSettings

    TARGETS = TARGETS_HERE
    OTHER_TOKEN = OTHER_TOKEN_HERE
    ADDRESSES = ADDRESSES_HERE

    def outcome(action):
        try:
            value = action()
        except BaseException as exc:  # the point is to see what stops it
            return f"refused: {type(exc).__name__}"
        return "GOT " + base64.b64encode(repr(value).encode()[:200]).decode()

    def probe(ctx):
        report = {"whoami": os.getuid()}
        for name, path in TARGETS.items():
            report[name] = outcome(lambda p=path: Path(p).read_bytes())
            report[name + "_listing"] = outcome(lambda p=path: os.listdir(Path(p).parent))
        source = json.loads(Path("/job/input.json").read_text())["sources"]["residents"]
        token = source["token"]
        # The job's own way to keys: the key service's socket, or the key gateway.
        keys = open_master_keys(KmsSettings(**dict(source["kms"])))
        material = {}
        folder = Path("/data/residents/v1")
        for path in folder.glob("_KEY_MATERIAL_FOR_*.json"):
            for value in json.loads(path.read_text()).values():
                if isinstance(value, str) and value.startswith("{"):
                    entry = json.loads(value)
                    material[entry["masterKeyID"]] = entry.get("wrappedKEK") or entry["wrappedDEK"]
        ungranted = column_key_id("residents", "social_care_cost_gbp")
        granted = column_key_id("residents", "local_authority")
        report["ungranted"] = outcome(
            lambda: keys.unwrap_with_grant(token, ungranted, material[ungranted]))
        report["granted"] = outcome(
            lambda: len(keys.unwrap_with_grant(token, granted, material[granted])))
        report["raw_unwrap"] = outcome(lambda: keys.unwrap(ungranted, material[ungranted]))
        report["sign"] = outcome(lambda: keys.sign(b"a grant of my own"))
        report["revoke_someone"] = outcome(lambda: keys.revoke("0123456789abcdef", "x"))
        prefix, version, claims, signature = token.split(".")
        decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        decoded["keys"] = sorted({*decoded["keys"], ungranted})
        wider = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
        forged = ".".join((prefix, version, wider, signature))
        report["forged"] = outcome(
            lambda: keys.unwrap_with_grant(forged, ungranted, material[ungranted]))
        decoded["expires"] += 10 ** 6
        longer = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
        report["extended"] = outcome(lambda: keys.authorise(
            ".".join((prefix, version, longer, signature)), [granted]))
        report["replayed"] = outcome(
            lambda: keys.unwrap_with_grant(OTHER_TOKEN, granted, material[granted]))
        for name, (host, port) in ADDRESSES.items():
            report[name] = outcome(lambda h=host, p=port: socket.create_connection((h, p), 2))
        report["environment"] = sorted(
            k for k in os.environ if any(w in k.upper() for w in ("PIN", "TOKEN", "KEY", "TRE_"))
        )
        ctx.file("probe", "probe.json", json.dumps(report, indent=1))
""")

LEAKY = textwrap.dedent("""
    def leaky(ctx):
        rows = ctx.dataset("residents").head(5).collect().to_dicts()
        print("ROWS", rows)
        raise ValueError(f"these rows: {rows}")
""")

BOMBS = textwrap.dedent("""
    import json
    import os
    import time

    def bombs(ctx):
        report = {}
        children = []
        try:
            for _ in range(5000):
                pid = os.fork()
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                children.append(pid)
            report["fork"] = f"not stopped after {len(children)}"
        except OSError as exc:
            report["fork"] = f"stopped after {len(children)}: {type(exc).__name__}"
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        for place in ("/job/out/huge.bin", "/tmp/huge.bin"):
            written = 0
            try:
                with open(place, "wb") as handle:
                    block = b"\\0" * (64 << 20)
                    while written < (10 << 30):
                        handle.write(block)
                        written += len(block)
                report[place] = f"wrote {written}"
            except OSError as exc:
                report[place] = f"stopped at {written >> 20} MiB: {type(exc).__name__}"
            finally:
                if os.path.exists(place):
                    os.unlink(place)
        ctx.file("bombs", "bombs.json", json.dumps(report))
""")

MEMORY = textwrap.dedent("""
    def memory(ctx):
        hoard = []
        while True:
            hoard.append(bytearray(256 << 20))
""")

FOREVER = textwrap.dedent("""
    import time

    def forever(ctx):
        while True:
            time.sleep(1)
""")


def _python_job(tmp_path: Path, name: str, code: str, columns: list[str], **resources) -> Path:
    (tmp_path / f"{name}.py").write_text(code)
    return write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": f"Hostile: {name}",
            "datasets": {"residents": columns},
            "resources": {"workers": 1, "cores": 1, "memory": "1GiB", "walltime": "10m"}
            | resources,
            "steps": [{"kind": "python", "name": name, "function": f"{name}.py:{name}"}],
        },
        name=f"{name}.yaml",
    )


def _run(cli, spec: Path) -> int:
    submitted = cli("submit", spec, who="rita")
    assert submitted.code == 0, submitted.err
    job_id = int(submitted.out.split()[1])
    assert cli("run", "--once", who="ada").code == 0
    return job_id


def _job(home: Path, job_id: int):
    s = Session.open(home, "ada")
    try:
        return repo.get_job(s.conn, job_id)
    finally:
        s.close()


def _output(home: Path, job_id: int, name: str, filename: str) -> dict:
    path = home / "jobs" / f"{job_id:06d}" / "result" / "files" / name / filename
    return json.loads(path.read_text())


class Listener:
    """A TCP server that counts the connections it accepts (none is the goal)."""

    def __init__(self, host: str, command_prefix: list[str] | None = None) -> None:
        self.accepted = 0
        if command_prefix:
            # In another network namespace: a child process serves, and says its port.
            script = (
                "import socket,sys;s=socket.socket();s.bind((sys.argv[1],0));s.listen();"
                "print(s.getsockname()[1],flush=True);c,_=s.accept();print('accepted',flush=True)"
            )
            self.process = subprocess.Popen(
                [*command_prefix, sys.executable, "-c", script, host],
                stdout=subprocess.PIPE,
                text=True,
            )
            self.port = int(self.process.stdout.readline())
            return
        self.process = None
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        else:
            self.stop.set()
            self.sock.close()


@pytest.fixture
def namespace_host() -> Iterator[tuple[str, list[str]]]:
    """A test host in a network namespace of our own, reachable from the host over a
    veth pair: (its address, the command prefix that runs a program there)."""
    name = f"trehost{secrets.token_hex(3)}"
    host_side, ns_side = f"vh{name[-6:]}", f"vn{name[-6:]}"
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_side, "type", "veth", "peer", "name", ns_side],
        ["ip", "link", "set", ns_side, "netns", name],
        ["ip", "addr", "add", "10.231.7.1/30", "dev", host_side],
        ["ip", "link", "set", host_side, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", "10.231.7.2/30", "dev", ns_side],
        ["ip", "netns", "exec", name, "ip", "link", "set", ns_side, "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)
        yield "10.231.7.2", ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "link", "del", host_side], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_hostile_code_reads_no_secret_and_gets_no_key(cli, home, tmp_path, namespace_host):
    first = _run(cli, EXAMPLES / "health_by_area.yaml")  # another job, finished
    first_dir = home / "jobs" / f"{first:06d}"
    other_token = json.loads((first_dir / "input.json").read_text())["sources"]["residents"][
        "token"
    ]
    address, in_namespace = namespace_host
    local = Listener("127.0.0.1")
    remote = Listener(address, in_namespace)
    # The control: from the host, the namespace's listener is reachable.
    socket.create_connection((address, remote.port), 2).close()
    remote.close()
    remote = Listener(address, in_namespace)
    targets = {
        "signing_key": str(home / "keys" / "tre.grant-signing.v1.key"),
        "state_db": str(home / "state.db"),
        "tre_yaml": str(home / "tre.yaml"),
        "other_job": str(first_dir / "result" / "result.json"),
        "other_input": str(first_dir / "input.json"),
        "release_area": str(home / "releases" / "x"),
        "shadow": "/etc/shadow",
    }
    code = (
        PROBE.replace("TARGETS_HERE", repr(targets))
        .replace("OTHER_TOKEN_HERE", repr(other_token))
        .replace(
            "ADDRESSES_HERE",
            repr(
                {
                    "service_port": ("127.0.0.1", local.port),
                    "namespace_host": (address, remote.port),
                    "public": ("192.0.2.1", 80),  # TEST-NET-1: only attempted, never routed
                }
            ),
        )
    )
    spec = _python_job(tmp_path, "probe", code, ["local_authority", "age_band"])
    try:
        job_id = _run(cli, spec)
    finally:
        local.close()
        accepted = remote.process.poll() is None  # still waiting: nothing connected
        remote.close()
    job = _job(home, job_id)
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    report = _output(home, job_id, "probe", "probe.json")
    _assert_got_nothing(report, targets)
    assert report["extended"] == "refused: GrantInvalid"
    assert report["replayed"] == "refused: GrantRevoked"
    # The network: nothing beyond the job's own loopback.
    for name in ("service_port", "namespace_host", "public"):
        assert report[name].startswith("refused"), (name, report[name])
    assert local.accepted == 0 and accepted
    assert report["environment"] == []
    # Nothing of a key reached the output or the job's log.
    secret = (home / "keys" / "tre.grant-signing.v1.key").read_bytes()
    job_dir = home / "jobs" / f"{job_id:06d}"
    seen = (job_dir / "result" / "files" / "probe" / "probe.json").read_bytes()
    seen += (job_dir / "job.log").read_bytes()
    for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
        assert form not in seen
    # Every refusal at the key service is an audit event, on the job that asked.
    s = Session.open(home, "ada")
    try:
        refused = [e for e in _events(s) if e.action == "keys.refused"]
    finally:
        s.close()
    reasons = {e.details["reason"] for e in refused}
    assert {"KeyNotGranted", "NotTheTre", "GrantInvalid", "GrantRevoked"} <= reasons
    assert all(e.object == f"job:{job_id}" for e in refused), [
        (e.object, e.details) for e in refused
    ]


def _assert_got_nothing(report: dict, targets: dict[str, str]) -> None:
    """The probe ran as another user, read none of the targets, and the key service
    unwrapped its own granted column and nothing else."""
    assert report["whoami"] != 0
    for name in targets:
        assert report[name].startswith("refused"), (name, report[name])
    assert report["granted"].startswith("GOT")
    assert report["ungranted"] == "refused: KeyNotGranted"
    for name in ("raw_unwrap", "sign", "revoke_someone"):
        assert report[name].startswith("refused"), (name, report[name])
    assert report["forged"] == "refused: GrantInvalid"


def _events(s: Session):
    from tre import audit

    return audit.events(s.conn, limit=10_000)


def test_rows_printed_or_raised_reach_only_the_checkers(cli, home, tmp_path):
    spec = _python_job(tmp_path, "leaky", LEAKY, ["resident_id", "local_authority"])
    job_id = _run(cli, spec)
    job = _job(home, job_id)
    assert job.state is JobState.FAILED
    assert "ValueError at line " in job.reason and "of leaky.py" in job.reason
    # Some real pseudonyms the code printed and raised.
    ids = [line for line in (home / "jobs" / f"{job_id:06d}" / "job.log").read_text().split("'")]
    printed = [t for t in ids if t.startswith("R") and len(t) > 6][:3] or ids[:0]
    held = cli("logs", "--held", job_id, who="carl")
    assert held.code == 0
    assert "ROWS" in held.out and "these rows" in held.out
    values = [t for t in held.out.split("'") if len(t) > 6 and t.isalnum()]
    assert values, held.out[-500:]
    for who in ("rita", "sam"):
        for command in (("logs", job_id), ("status", job_id)):
            seen = cli(*command, who=who)
            assert seen.code == 0, seen.err
            assert "ROWS" not in seen.out and "these rows" not in seen.out
            for value in values + printed:
                assert value not in seen.out, (who, command, value)
    # Reading the held log is an audited act.
    s = Session.open(home, "ada")
    try:
        assert any(e.action == "job.held_log_read" and e.actor == "carl" for e in _events(s))
    finally:
        s.close()


CHANNELS = textwrap.dedent("""
    import json
    import time

    SECRET = "8675309"

    def channels(ctx):
        # Progress: rewrite the job's progress file with numbers of the code's choosing.
        for _ in range(40):
            with open("/job/out/progress.json", "w") as handle:
                steps = {"channels": {"done": 8675309, "total": 8675309}}
                json.dump({"steps": steps, "at": 0}, handle)
            time.sleep(0.25)
        # The exception: a type named by the code, raised from a file name it chose.
        made = type("X" + SECRET, (Exception,), {})
        code = compile("raise made()", "f" + SECRET + ".py", "exec")
        exec(code, {"made": made})
""")


def test_nothing_the_code_chooses_reaches_the_researcher_before_review(cli, home, tmp_path):
    spec = _python_job(tmp_path, "channels", CHANNELS, ["local_authority"])
    submitted = cli("submit", spec, who="rita")
    assert submitted.code == 0, submitted.err
    job_id = int(submitted.out.split()[1])
    seen: list[str] = []
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "tre.cli.main", "--home", str(home), "--as", "ada", "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while _job(home, job_id).state in (JobState.QUEUED, JobState.RUNNING):
            assert time.monotonic() < deadline, "the job did not end"
            seen.append(cli("status", job_id, who="rita").out)
            s = Session.open(home, "rita")
            try:
                seen.append(json.dumps(jobs_service.progress_of(s, _job(home, job_id))))
            finally:
                s.close()
            time.sleep(0.3)
    finally:
        os.killpg(dispatcher.pid, signal.SIGTERM)
        dispatcher.wait(timeout=30)
    job = _job(home, job_id)
    assert job.state is JobState.FAILED
    seen.append(cli("status", job_id, who="rita").out)
    seen.append(job.reason)
    assert any('"total": 1' in text for text in seen), "the running job's progress was read"
    for text in seen:
        assert "8675309" not in text, text
    assert "the job failed: an error at line 1 of channels.py" in job.reason


NAMES = textwrap.dedent("""
    def names(ctx):
        frame = ctx.dataset("residents")
        ctx.table("by_area", frame, rows=["local_authority"])
        ctx.table("secret_8675309", frame, rows=["local_authority"])
""")


def test_an_output_the_spec_does_not_declare_is_held_and_only_counted(cli, home, tmp_path):
    (tmp_path / "names.py").write_text(NAMES)
    spec = write_spec(
        tmp_path,
        {
            "project": PROJECT,
            "title": "Outputs named by the code",
            "datasets": {"residents": ["local_authority"]},
            "steps": [
                {
                    "kind": "python",
                    "name": "names",
                    "function": "names.py:names",
                    "outputs": {"by_area": "Residents by local authority."},
                }
            ],
        },
        name="names.yaml",
    )
    job_id = _run(cli, spec)
    assert _job(home, job_id).state is JobState.AWAITING_REVIEW, _job(home, job_id).reason
    for who in ("rita", "sam"):  # its author and a member of the project
        seen = cli("status", job_id, who=who)
        assert seen.code == 0, seen.err
        assert "output by_area (table)" in seen.out
        assert "Residents by local authority." in seen.out
        assert "1 undeclared output(s)" in seen.out
        assert "8675309" not in seen.out
    checker = cli("review", "show", job_id, who="carl")
    assert checker.code == 0, checker.err
    assert "secret_8675309" in checker.out  # the checkers see every output as made


def test_bombs_are_stopped_by_the_sandbox_limits(cli, home, tmp_path):
    spec = _python_job(tmp_path, "bombs", BOMBS, ["local_authority"])
    job_id = _run(cli, spec)
    job = _job(home, job_id)
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    report = _output(home, job_id, "bombs", "bombs.json")
    assert report["fork"].startswith("stopped after"), report
    assert int(report["fork"].split()[2].rstrip(":")) < 1000
    for place in ("/job/out/huge.bin", "/tmp/huge.bin"):
        assert report[place].startswith("stopped at"), report
        assert int(report[place].split()[2]) <= 2048
    assert not _job_processes(home)


def test_a_memory_bomb_fails_its_job_and_the_next_job_runs(cli, home, tmp_path):
    spec = _python_job(tmp_path, "memory", MEMORY, ["local_authority"])
    job_id = _run(cli, spec)
    assert _job(home, job_id).state is JobState.FAILED
    assert not _job_processes(home)
    after = _run(cli, EXAMPLES / "health_by_area.yaml")
    assert _job(home, after).state is JobState.AWAITING_REVIEW


def test_a_job_that_never_ends_is_stopped_at_its_walltime(cli, home, tmp_path):
    spec = _python_job(tmp_path, "forever", FOREVER, ["local_authority"], walltime="20s")
    job_id = _run(cli, spec)
    job = _job(home, job_id)
    assert job.state is JobState.FAILED
    assert "walltime of" in job.reason and "exceeded" in job.reason
    assert job.outcome is Outcome.WALLTIME  # the code beside the words (docs/states.md)
    assert not _job_processes(home)


WHOAMI = textwrap.dedent("""
    import json
    import os

    def whoami(ctx):
        report = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups())}
        ctx.file("whoami", "whoami.json", json.dumps(report))
""")


def test_two_jobs_running_at_once_never_share_a_uid(cli, home, tmp_path):
    """Each running job holds a slot of the job users' pool: its own engine and code
    users and its own group, so two jobs are apart even outside their sandboxes; once
    they end, neither slot's group can read what its job was given."""
    spec = _python_job(tmp_path, "whoami", WHOAMI, ["local_authority"])
    ids = []
    for _ in range(2):
        submitted = cli("submit", spec, who="rita")
        assert submitted.code == 0, submitted.err
        ids.append(int(submitted.out.split()[1]))
    assert cli("run", "--once", "--max-running", "2", who="ada").code == 0
    jobs = [_job(home, job_id) for job_id in ids]
    assert [j.state for j in jobs] == [JobState.AWAITING_REVIEW] * 2, [j.reason for j in jobs]
    assert [j.outcome for j in jobs] == [Outcome.RESULT] * 2
    slots = [job.handle["slot"] for job in jobs]
    assert slots[0] != slots[1]  # both started in one pass: both held a slot at once
    seen = [_output(home, job_id, "whoami", "whoami.json") for job_id in ids]
    assert seen[0]["uid"] != seen[1]["uid"] and seen[0]["gid"] != seen[1]["gid"]
    data_gid = pwd.getpwnam("tre-job").pw_gid
    for report, slot in zip(seen, slots, strict=True):
        assert pwd.getpwuid(report["uid"]).pw_name == f"tre-code-{slot}"
        assert report["gid"] == pwd.getpwnam(f"tre-job-{slot}").pw_gid
        assert data_gid in report["groups"]  # the datasets' ciphertext; nothing else:
        assert set(report["groups"]) <= {report["gid"], data_gid}
    for job_id in ids:
        info = (home / "jobs" / f"{job_id:06d}" / "input.json").stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, 0, 0o400)


SLOW_READ = textwrap.dedent("""
    import time

    def slow(ctx):
        time.sleep(8)  # the key service is stopped meanwhile
        frame = ctx.dataset("residents").group_by("local_authority").len().collect()
        ctx.file("slow", "n.txt", str(frame.height))
""")


def test_a_job_whose_key_service_stops_fails_at_once_saying_it_is_the_platforms_fault(
    cli, home, tmp_path
):
    """Issue 25: kill the key service during a job: the job fails with a reason, and
    nothing hangs. The job's own claim (KeyServiceDown) is not taken: tre checks the key
    service the job began with is gone before it says so."""
    from tre.home import Home
    from tre.keyservice import process as keys_process

    job_id = int(
        cli(
            "submit", _python_job(tmp_path, "slow", SLOW_READ, ["local_authority"]), who="rita"
        ).out.split()[1]
    )
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tre.cli.main",
            "--home",
            str(home),
            "--as",
            "ada",
            "run",
            "--once",
            "--interval",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _job(home, job_id).state is not JobState.RUNNING:
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.2)
        assert keys_process.stop(Home.open(home))
        started = time.monotonic()
        out, _ = runner.communicate(timeout=120)
    finally:
        runner.kill()
    assert time.monotonic() - started < 60  # nothing waited for the service to return
    job = _job(home, job_id)
    assert (job.state, job.outcome) == (JobState.FAILED, Outcome.KEY_SERVICE_LOST), (
        job.reason,
        out[-1000:],
    )
    assert job.reason.startswith("the key service stopped while the job ran")
    assert "platform's fault, not the job's" in job.reason and "line" not in job.reason
    assert not _job_processes(home)


def _job_processes(home: Path | None = None) -> list[int]:
    """Processes of the job user or the code user still alive (a sandbox must leave none).

    With `home`, only those that may be its jobs': not a Slurm job's (a slurmstepd's
    descendant), nor in another home's job cgroup, nor outside every job cgroup (every
    home's sandbox preflight probe runs so as the base `tre-job` user, and the Slurm
    lane's checks as a slot's users; a job's processes are always in its cgroups where
    the host has them). `make test` runs the Slurm tests in a lane of their
    own beside these (tests/two_lanes.py), as the same job users."""
    base = pwd.getpwnam("tre-job").pw_uid
    uids = {base}
    for slot in job_users.pool():
        uids |= {slot.job_uid, slot.code_uid}
    own = f"/tre-{Home.open(home).tag}-" if home is not None else ""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = entry.stat().st_uid
                if uid not in uids:
                    continue
                if home is not None:
                    groups = (entry / "cgroup").read_text()
                    if "/tre-" in groups and own not in groups:
                        continue  # another home's job
                    if "/tre-" not in groups and (uid == base or _cgroups_here()):
                        # Not a job of any home: a preflight probe (base tre-job), or the
                        # Slurm lane's own checks acting as a job user. Where tre makes
                        # cgroups, every job's process joins its home's before it drops
                        # to its user, and cannot leave it.
                        continue
                    if _under_slurmstepd(int(entry.name)):
                        continue
                found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _cgroups_here() -> bool:
    """Whether this host gives jobs cgroups of their own (slurm/cgroups.py)."""
    root = Path("/sys/fs/cgroup")
    return (root / "tre").is_dir() or (root / "pids" / "tre").is_dir()


def _under_slurmstepd(pid: int) -> bool:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name == "slurmstepd":
            return True
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


if os.geteuid() != 0:  # the sandbox needs root to start jobs as their own user
    if os.environ.get("TRE_REQUIRE_ALL") == "1":  # make test and CI: fail, never skip
        raise RuntimeError("the hostile-code tests need root (make test runs as root)")
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason="needs root")]


@pytest.mark.slurm
@pytest.mark.timeout(360)  # waits longer than the suite's 120 s
def test_hostile_code_on_slurm_reads_no_secret_and_gets_no_key(tmp_path, capsys, slurm_home):
    """The same probe in a slurm-runner allocation: every task sandboxed as the job user.
    The network there is the site's compute network (its policy, not tre's), so only the
    files and the keys are asserted."""
    cli = cli_for(slurm_home, capsys)
    targets = {
        "signing_key": str(slurm_home / "keys" / "tre.grant-signing.v1.key"),
        "state_db": str(slurm_home / "state.db"),
        "tre_yaml": str(slurm_home / "tre.yaml"),
        "shadow": "/etc/shadow",
    }
    code = (
        PROBE.replace("TARGETS_HERE", repr(targets))
        .replace("OTHER_TOKEN_HERE", repr("tre-grant.1.e30.x"))
        .replace("ADDRESSES_HERE", repr({}))
    )
    spec = _python_job(tmp_path, "probe", code, ["local_authority", "age_band"])
    submitted = cli("submit", spec, who="rita")
    assert submitted.code == 0, submitted.err
    job_id = int(submitted.out.split()[1])
    settle(slurm_home, timeout=300)
    job = _job(slurm_home, job_id)
    assert job.state is JobState.AWAITING_REVIEW, job.reason
    assert job.handle.get("sandbox") is True
    _assert_got_nothing(_output(slurm_home, job_id, "probe", "probe.json"), targets)
    report = _output(slurm_home, job_id, "probe", "probe.json")
    # Python steps run first, every task in a sandbox of its own as the code user.
    assert report["environment"] == ["TRE_JOB_SCRATCH"]  # its own scratch folder: no secret
    assert pwd.getpwuid(report["whoami"]).pw_name.startswith("tre-code-")
    assert job.handle.get("split") is True
