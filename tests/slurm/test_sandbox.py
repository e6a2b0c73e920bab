"""The sandbox's command, as text: what a job is shown, and as whom it runs (no job runs
here; tests/e2e/test_hostile.py runs hostile code in it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from slurm import sandbox
from tre.runtime import PACKAGES, runtime_paths


def _plan(tmp_path: Path, **changes) -> sandbox.Plan:
    home = tmp_path / "home"
    job = home / "jobs" / "000007"
    (job / "code").mkdir(parents=True, exist_ok=True)
    values = {
        "job_dir": job,
        "out_dir": job / "out",
        "data": ((home / "data" / "residents" / "v2", "residents/v2"),),
        "key_socket": Path("/run/tre/abc/keys.sock"),
        "uid": 999,
        "gid": 995,
        "memory_bytes": 3 << 30,
        "cpu_seconds": 4200,
        "python": "/opt/venv/bin/python",
        "runtime": (Path("/opt/venv"), Path("/opt/tre")),
        "hide": (Path("/opt/tre/.demo/home"),),
    }
    values.update(changes)
    return sandbox.Plan(**values)


def _pairs(command: list[str], flag: str) -> list[tuple[str, str]]:
    return [(command[i + 1], command[i + 2]) for i, c in enumerate(command) if c == flag]


def test_the_job_runs_as_the_job_user_with_no_capabilities(tmp_path):
    command = sandbox.command(_plan(tmp_path))
    assert command[0] == "prlimit" and "--fsize=2147483648" in command and "--cpu=4200" in command
    assert command.index("bwrap") < command.index("setpriv") < command.index("slurm.launch")
    drop = command[command.index("setpriv") :]
    for flag in ("--reuid=999", "--regid=995", "--clear-groups", "--no-new-privs"):
        assert flag in drop
    assert "--inh-caps=-all" in drop and "--bounding-set=-all" in drop
    # Its own network (loopback only), pid, IPC and host name; no inherited environment.
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--clearenv"):
        assert flag in command
    assert command[-6:] == ["--out", "/job/out", "--scratch", "/tmp/scratch", "--cluster", "local"]


def test_it_sees_its_input_read_only_and_nothing_else_of_the_home(tmp_path):
    plan = _plan(tmp_path)
    command = sandbox.command(plan)
    read_only = dict(_pairs(command, "--ro-bind"))
    writable = dict(_pairs(command, "--bind"))
    home = tmp_path / "home"
    shown = [p for p in (*read_only, *writable) if p.startswith(str(home))]
    assert sorted(shown) == sorted(
        [
            str(plan.job_dir / "input.json"),
            str(plan.job_dir / "code"),
            str(plan.out_dir),
            str(home / "data" / "residents" / "v2"),
        ]
    )
    assert read_only[str(plan.job_dir / "input.json")] == "/job/input.json"
    assert read_only[str(home / "data" / "residents" / "v2")] == "/data/residents/v2"
    assert writable == {
        str(plan.out_dir): "/job/out",
        "/run/tre/abc/keys.sock": "/run/tre/keys.sock",
    }
    # The runtime is read-only, and a home kept inside it is covered by an empty tmpfs.
    assert read_only["/opt/venv"] == "/opt/venv" and read_only["/usr"] == "/usr"
    tmpfs = [command[i + 1] for i, c in enumerate(command) if c == "--tmpfs"]
    assert "/opt/tre/.demo/home" in tmpfs and "/tmp" in tmpfs
    assert command.index("/opt/tre/.demo/home") > command.index("/opt/tre")
    assert not any(p.startswith("/etc/shadow") or p == "/etc" for p in read_only)


def test_it_joins_its_cgroups_before_anything_runs(tmp_path):
    groups = (
        Path("/sys/fs/cgroup/memory/tre/tre-abc-7"),
        Path("/sys/fs/cgroup/pids/tre/tre-abc-7"),
    )
    command = sandbox.command(_plan(tmp_path, cgroups=groups))
    assert command[:2] == ["/bin/sh", "-c"]
    assert command[4:6] == [str(g / "cgroup.procs") for g in groups]
    assert command[6] == "--" and command[7] == "prlimit"
    assert "|| continue" not in command[2]  # here, a missing cgroup stops the job


def test_a_slurm_task_on_another_host_joins_only_the_cgroups_that_exist_there(tmp_path):
    here = tmp_path / "pids" / "tre" / "tre-abc-7"
    here.mkdir(parents=True)
    (here / "cgroup.procs").write_text("")
    elsewhere = tmp_path / "memory" / "tre" / "tre-abc-7"  # made on the service node only
    plan = _plan(tmp_path, cgroups=(elsewhere, here), cgroups_here_only=True, program=("true",))
    done = subprocess.run([*sandbox.command(plan)[:6], "--", "true"], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (here / "cgroup.procs").read_text().strip().isdigit()  # the one that exists


def test_a_slurm_task_whose_job_cgroup_is_gone_here_does_not_start(tmp_path):
    # tre's folder is here but the job's group is not: the job was cancelled (its groups
    # emptied and removed) before this task began. It must not run outside them.
    gone = tmp_path / "pids" / "tre" / "tre-abc-7"
    gone.parent.mkdir(parents=True)
    plan = _plan(tmp_path, cgroups=(gone,), cgroups_here_only=True, program=("true",))
    done = subprocess.run([*sandbox.command(plan)[:5], "--", "true"], capture_output=True)
    assert done.returncode == 70


def test_a_runtime_under_tmp_is_bound_after_the_sandboxes_own_tmp(tmp_path):
    # bubblewrap mounts in order: bound before the private /tmp, a checkout under /tmp
    # would be hidden and the job would find no Python (exit 127).
    runtime = (Path("/tmp/clone dir/.venv"), Path("/tmp/clone dir/tre"))
    command = sandbox.command(_plan(tmp_path, runtime=runtime, hide=()))
    tmpfs_at = next(i for i, c in enumerate(command) if c == "--tmpfs" and command[i + 1] == "/tmp")
    for folder in runtime:
        assert command.index(str(folder)) > tmpfs_at
    made = [command[i + 1] for i, c in enumerate(command) if c == "--dir"]
    assert "/tmp/clone dir" in made and "/tmp" not in made  # the tmpfs keeps its 1777


def test_only_tres_packages_of_a_checkout_are_shown(tmp_path):
    import sys

    import tre

    runtime, _hide = runtime_paths()
    checkout = Path(tre.__file__).resolve().parent.parent
    assert checkout not in runtime
    shown = {p for p in runtime if p.is_relative_to(checkout)}
    expected = {checkout / name for name in PACKAGES}
    if Path(sys.prefix).resolve().is_relative_to(checkout):
        expected.add(Path(sys.prefix).resolve())
    assert shown == expected  # no .git, no bench/, no tests/


def test_the_preflight_probe_runs_instead_of_the_launcher(tmp_path):
    command = sandbox.command(_plan(tmp_path, program=("/opt/venv/bin/python", "-c", "pass")))
    assert command[-3:] == ["/opt/venv/bin/python", "-c", "pass"]
    assert "slurm.launch" not in command


def test_a_job_split_in_two_runs_the_code_first_then_the_engine_whatever_the_code_did(tmp_path):
    import shlex

    handover = tmp_path / "home" / "jobs" / "000007" / "hand over"
    code = sandbox.command(_plan(tmp_path, out_dir=handover, uid=994, phase="code"))
    engine = sandbox.command(_plan(tmp_path, phase="engine", handover=handover))
    assert code[code.index("--phase") + 1] == "code" and "--handover" not in code
    assert ("--ro-bind", str(handover), "/job/handover") in [
        (engine[i], engine[i + 1], engine[i + 2]) for i in range(len(engine) - 2)
    ]
    assert engine[engine.index("--handover") + 1] == "/job/handover"
    assert "--reuid=994" in code and "--reuid=999" in engine
    both = sandbox.in_sequence(code, engine)
    assert both[:2] == ["/bin/sh", "-c"]
    first, _, then = both[2].partition("; exec ")
    assert shlex.split(first) == code and shlex.split(then) == engine  # a path with a space


def test_a_job_started_as_its_job_user_runs_bubblewrap_unprivileged(tmp_path):
    """Submitted through sudo (SiteProfile.submit_via_sudo): no user to drop to, no
    capability to add; a user namespace that may make no other."""
    command = sandbox.command(_plan(tmp_path, unprivileged=True, groups=(994,)))
    assert "setpriv" not in command and "--cap-add" not in command
    for flag in ("--unshare-user", "--disable-userns", "--unshare-net", "--unshare-pid"):
        assert flag in command
    assert command[command.index("--cap-drop") + 1] == "ALL"
    end = len(command) - 1 - command[::-1].index("--")  # bubblewrap's last option
    assert command.index("bwrap") < command.index("--disable-userns") < end


def test_the_pool_s_data_group_is_the_job_s_only_other_group(tmp_path):
    drop = sandbox.command(_plan(tmp_path, groups=(994,)))
    assert "--groups=994" in drop and "--clear-groups" not in drop
