"""`tre cluster check`: can this site run tre jobs with this profile? Each check says
what it found and, when it fails, the fix. Nothing here needs a tre home."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from slurm import commands, job_users
from slurm.check_probe import PROBE as _PROBE
from slurm.profiles import SiteProfile
from slurm.scripts import render_runner_script, sbatch_header
from tre.errors import TreError
from tre.models import Resources, SlurmPlacement

PROBE_RESOURCES = Resources(workers=1, cores=1, memory="512MiB", walltime="5m")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_cluster(
    profile: SiteProfile, *, project: str = "tre-check", placement: SlurmPlacement | None = None
) -> list[Check]:
    """Run every check in order; later checks are skipped when Slurm is unreachable."""
    placed = profile.placement_for(project, placement or SlurmPlacement())
    results = [_commands_present()]
    if not results[0].ok:
        return results
    results += [_munge(), _controller()]
    if not results[-1].ok:
        return results
    if placed.partition:
        results.append(_partition(placed.partition))
    with tempfile.TemporaryDirectory(prefix="tre-check-") as folder, _listening(profile) as why:
        if why:
            return [*results, Check("key gateway address", False, why, _ADDRESS_FIX)]
        work = Path(folder)
        user = None
        if profile.submit_via_sudo or profile.backend == "slurm-cluster":
            # Submitted as a job user, as jobs are (through the sudo rule; slurm-cluster's
            # workers, by their engine as that user), into a folder of its own.
            try:
                slot = job_users.slot(0)
            except job_users.NoJobUsers as exc:
                return [*results, Check("job account", False, exc.message, exc.fix or "")]
            user = slot.job_user
            os.chown(work, slot.job_uid, slot.gid)
        script = work / "probe.sbatch"
        script.write_text(_probe_script(profile, placed, work))
        os.chmod(work / "probe.py", 0o644)
        os.chmod(script, 0o644)
        results.append(_accepted(script, work, placed, user))
        if results[-1].ok:
            results += _probe(script, work, profile, user)
    return results


_ADDRESS_FIX = (
    "set key_gateway to this service node's address on the compute network, and a free port"
)


def scheduler_address(profile: SiteProfile) -> str:
    """slurm-cluster: where a job's scheduler listens that compute nodes must reach (the
    service node's address, as in key_gateway, on the first of scheduler_ports); ''
    for slurm-runner, whose scheduler is inside the allocation."""
    if profile.backend != "slurm-cluster" or not profile.scheduler_ports:
        return ""
    if not profile.key_gateway:
        return ""
    return f"{profile.key_gateway.rpartition(':')[0]}:{profile.port_range()[0]}"


@contextlib.contextmanager
def _listening(profile: SiteProfile) -> Iterator[str]:
    """While the probe runs, something listens at the profile's key gateway address (and
    slurm-cluster's first scheduler port): the gateway (or a job's scheduler) itself if
    it runs, else a listener of the check's own, so that the probe tells the fence from
    an absent service. Yields why not, if it cannot be."""
    wanted = [a for a in (profile.key_gateway, scheduler_address(profile)) if a]
    with contextlib.ExitStack() as stack:
        for address in wanted:
            host, _, port = address.rpartition(":")
            try:
                listener = socket.create_server((host, int(port)))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue  # the gateway, a job's scheduler (or another listener) is there
                yield f"this machine cannot listen at {address} ({exc.strerror})"
                return
            stack.enter_context(listener)
        yield ""


def render_example(profile: SiteProfile, project: str = "example") -> str:
    """The sbatch script a 2-worker job of `project` would get, for people to read."""
    return render_runner_script(
        name="tre-example-0",
        job_dir=Path("/path/to/TRE_HOME/jobs/000000"),
        resources=Resources(workers=2, cores=4, memory="16GiB", walltime="1h"),
        profile=profile,
        placement=profile.placement_for(project, SlurmPlacement()),
        python=profile.python or sys.executable,
    )


def _try(name: str, action: Callable[[], str], fix: str) -> Check:
    try:
        return Check(name, True, action())
    except TreError as exc:
        return Check(name, False, " ".join([exc.message, *exc.reasons]), fix)


def _commands_present() -> Check:
    missing = [
        c for c in ("sbatch", "squeue", "scancel", "scontrol", "sinfo") if shutil.which(c) is None
    ]
    if missing:
        return Check(
            "slurm commands",
            False,
            f"not on PATH: {', '.join(missing)}",
            "install Slurm's client commands (Debian: slurm-client) on this node",
        )
    return Check("slurm commands", True, "sbatch, squeue, scancel, scontrol, sinfo found")


def _munge() -> Check:
    if shutil.which("munge") is None:
        return Check("munge", True, "munge not on PATH (the site may use another auth)")
    encode = commands.run(["munge", "-n"], check=False)
    if encode.returncode != 0:
        return Check(
            "munge",
            False,
            encode.stderr.strip() or "munge -n failed",
            "start munged (as the munge user) with the cluster's shared key",
        )
    return Check("munge", True, "munged answers and can sign credentials")


def _controller() -> Check:
    return _try(
        "controller",
        lambda: commands.run(["scontrol", "ping"]).stdout.strip(),
        "check that slurmctld runs and slurm.conf on this node names it",
    )


def _partition(name: str) -> Check:
    try:
        state = commands.run(["sinfo", "-h", "-p", name, "-o", "%a %D %t"]).stdout.strip()
        known = commands.run(["sinfo", "-h", "-o", "%R"]).stdout.split()
    except TreError as exc:
        return Check("partition", False, exc.message, "check that sinfo works on this node")
    fix = f"use a partition that exists and is up (this cluster has: {', '.join(known)})"
    if not state:
        return Check("partition", False, f"there is no partition {name!r}", fix)
    if not state.startswith("up"):
        return Check("partition", False, f"partition {name} is {state}", fix)
    return Check("partition", True, f"{name} is {state}")


def _probe_script(profile: SiteProfile, placement: SlurmPlacement, work: Path) -> str:
    python = profile.python or sys.executable
    (work / "probe.py").write_text(_PROBE)
    lines = sbatch_header(
        name="tre-check",
        output=work / "probe-%j.out",
        resources=PROBE_RESOURCES,
        profile=profile,
        placement=placement,
        ntasks=1,
    )
    return "\n".join(
        [
            *lines,
            *profile.prologue,
            f"srun {shlex.quote(python)} {shlex.quote(str(work / 'probe.py'))} "
            f"'{profile.local_directory}' {shlex.quote(profile.key_gateway or '')} "
            f"{shlex.quote(profile.outside_probe or '')} "
            f"{shlex.quote(scheduler_address(profile))}",
            "",
        ]
    )


def _accepted(
    script: Path, work: Path, placement: SlurmPlacement, user: str | None = None
) -> Check:
    what = ", ".join(f"{k} {v}" for k, v in placement.model_dump().items() if v) or "defaults"

    def ask() -> str:
        commands.sbatch(script, chdir=work, test_only=True, user=user)
        return f"Slurm would accept a job with {what}" + (f", submitted as {user}" if user else "")

    return _try(
        "account, partition, QoS" + (", job account" if user else ""),
        ask,
        "ask the site for the right account/partition/QoS; set them in the profile "
        "or the project's slurm settings"
        + (f"; {commands.SUDO_FIX} (if sudo refused)" if user else ""),
    )


def _service_interface(interface: str | None) -> Check:
    """slurm-cluster: the scheduler's interface must be this (the service) node's."""
    here = sorted(name for _, name in socket.if_nameindex())
    ok = interface is None or interface in here
    return Check(
        "scheduler interface (service node)",
        ok,
        f"{interface or 'default'} {'present' if ok else 'missing'} on this node; it has "
        f"{', '.join(here)}",
        ""
        if ok
        else "set scheduler_interface to this service node's interface on the compute network",
    )


def _network_and_sandbox(found: dict[str, str], profile: SiteProfile) -> list[Check]:
    """What a compute node reaches (the key gateway, and nothing outside the cluster),
    and whether a sandbox starts there."""
    checks = []
    if profile.key_gateway:
        ok = found.get("gateway") == "connected"
        checks.append(
            Check(
                "key gateway from a node",
                ok,
                f"{profile.key_gateway} reachable"
                if ok
                else f"{profile.key_gateway} not reachable: {found.get('gateway', '')}",
                ""
                if ok
                else "let the compute nodes reach that port of the service node "
                "(slurm/devcluster/compute-fence.nft is an example), and check the "
                "service node has that address",
            )
        )
    if scheduler := scheduler_address(profile):
        ok = found.get("scheduler") == "connected"
        checks.append(
            Check(
                "job schedulers from a node",
                ok,
                f"{scheduler} reachable (the first of scheduler_ports)"
                if ok
                else f"{scheduler} not reachable: {found.get('scheduler', '')}",
                ""
                if ok
                else f"let the compute nodes reach the service node's ports "
                f"{profile.scheduler_ports} (slurm-cluster's schedulers listen there)",
            )
        )
    if profile.outside_probe:
        outside = found.get("outside", "")
        closed = outside != "connected"
        checks.append(
            Check(
                "no way out",
                closed,
                f"an address outside the cluster is not reachable ({outside})"
                if closed
                else f"a compute node reached {profile.outside_probe}, outside the cluster",
                ""
                if closed
                else "keep compute nodes off every network but the cluster's: a job's code "
                "runs there with decrypted data",
            )
        )
    sandbox_ok = found.get("sandbox") == "ok"
    checks.append(
        Check(
            "sandbox on a node",
            sandbox_ok,
            "bubblewrap starts a sandbox" if sandbox_ok else found.get("sandbox", "no answer"),
            "" if sandbox_ok else "install bubblewrap on the compute nodes (Debian: bubblewrap)",
        )
    )
    return checks


def _probe(script: Path, work: Path, profile: SiteProfile, user: str | None = None) -> list[Check]:
    try:
        job_id = commands.sbatch(
            script, chdir=work, wait=True, timeout=float(profile.startup_timeout), user=user
        )
    except TreError as exc:
        return [
            Check(
                "tiny job",
                False,
                exc.message,
                "see why with 'scontrol show job' and the slurmctld log",
            )
        ]
    state = commands.job_state(job_id)
    output = next(work.glob("probe-*.out"), None)
    text = output.read_text(errors="replace") if output else ""
    line = next((ln for ln in text.splitlines() if ln.startswith("TRE-PROBE ")), None)
    if line is None:
        return [
            Check(
                "tiny job",
                False,
                f"{commands.describe(state)}; output: {text[-300:]!r}",
                "check the profile's python and prologue on a compute node",
            )
        ]
    found = json.loads(line.removeprefix("TRE-PROBE "))
    checks = [Check("tiny job", True, f"job {job_id} ran: {commands.describe(state)}")]
    if user is not None:
        ran_as = found.get("user", "")
        checks.append(
            Check(
                "job account",
                ran_as == user,
                f"jobs run as their job user ({user}), "
                + ("submitted through sudo" if profile.submit_via_sudo else "as workers do")
                if ran_as == user
                else f"the job ran as {ran_as!r}, not {user!r}",
                "" if ran_as == user else "check the sudo rule (docs/slurm.md, 'The job account')",
            )
        )
    imports_ok = found["imports"] == "ok"
    checks.append(
        Check(
            "python on nodes",
            imports_ok,
            f"Python {found['python']}, tre and its stack import"
            if imports_ok
            else found["imports"],
            "" if imports_ok else "install tre into the profile's python on the nodes",
        )
    )
    on_node = [("worker interface", profile.interface)]
    if profile.backend == "slurm-cluster":
        # Its scheduler runs here, on the service node, with the engine.
        checks.append(_service_interface(profile.scheduler_interface))
    else:
        on_node.append(("scheduler interface", profile.scheduler_interface))
    for label, interface in on_node:
        if interface:
            ok = interface in found["interfaces"]
            checks.append(
                Check(
                    label,
                    ok,
                    f"{interface} {'present' if ok else 'missing'}; "
                    f"node has {', '.join(found['interfaces'])}",
                    "" if ok else "set the profile's interface to one the node has",
                )
            )
    checks += _network_and_sandbox(found, profile)
    scratch_ok = found["scratch"] == "ok"
    checks.append(
        Check(
            "node-local scratch",
            scratch_ok,
            f"{profile.local_directory} is writable" if scratch_ok else found["scratch"],
            "" if scratch_ok else "set local_directory to a writable node-local path",
        )
    )
    return checks
