"""`tre cluster check`: can this site run tre jobs with this profile? Each check says
what it found and, when it fails, the fix. Nothing here needs a tre home."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slurm import commands
from slurm.profiles import SiteProfile
from slurm.scripts import render_runner_script, sbatch_header
from tre.errors import TreError
from tre.models import Resources, SlurmPlacement

PROBE_RESOURCES = Resources(workers=1, cores=1, memory="512MiB", walltime="5m")

# Runs on a compute node with the profile's Python: imports, interface, scratch.
_PROBE = r"""
import json, os, sys, tempfile
found = {"python": sys.version.split()[0]}
try:
    import tre, jobs, slurm, disclosure, dask_jobqueue, distributed, pyarrow, polars
    found["imports"] = "ok"
except Exception as exc:
    found["imports"] = f"{type(exc).__name__}: {exc}"
import psutil
found["interfaces"] = sorted(psutil.net_if_addrs())
scratch = os.path.expandvars(sys.argv[1])
try:
    os.makedirs(scratch, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch):
        pass
    found["scratch"] = "ok"
except OSError as exc:
    found["scratch"] = f"{scratch}: {exc.strerror}"
print("TRE-PROBE " + json.dumps(found))
"""


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
    with tempfile.TemporaryDirectory(prefix="tre-check-") as folder:
        work = Path(folder)
        script = work / "probe.sbatch"
        script.write_text(_probe_script(profile, placed, work))
        results.append(_accepted(script, work, placed))
        if results[-1].ok:
            results += _probe(script, work, profile)
    return results


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
            f"'{profile.local_directory}'",
            "",
        ]
    )


def _accepted(script: Path, work: Path, placement: SlurmPlacement) -> Check:
    what = ", ".join(f"{k} {v}" for k, v in placement.model_dump().items() if v) or "defaults"

    def ask() -> str:
        commands.sbatch(script, chdir=work, test_only=True)
        return f"Slurm would accept a job with {what}"

    return _try(
        "account, partition, QoS",
        ask,
        "ask the site for the right account/partition/QoS; set them in the profile "
        "or the project's slurm settings",
    )


def _probe(script: Path, work: Path, profile: SiteProfile) -> list[Check]:
    try:
        job_id = commands.sbatch(
            script, chdir=work, wait=True, timeout=float(profile.startup_timeout)
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
    for label, interface in (
        ("worker interface", profile.interface),
        ("scheduler interface", profile.scheduler_interface),
    ):
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
