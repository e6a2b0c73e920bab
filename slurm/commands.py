"""Every call of sbatch, squeue, sacct, scontrol and scancel goes through `run()`.

`run()` logs the command and raises SlurmCommandError with its exit code, stdout and
stderr; the functions below turn the answers into Python values. Where the site has
no accounting database (sacct says so), job states come from squeue and scontrol,
which keep finished jobs for MinJobAge seconds.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slurm.errors import SlurmCommandError

log = logging.getLogger("tre.slurm")
TIMEOUT_SECONDS = 60.0

#: Slurm job states in which the job may still run.
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)
#: Ended states worth another attempt: the job did nothing wrong, its node did.
RETRYABLE_STATES = frozenset({"NODE_FAIL", "BOOT_FAIL", "PREEMPTED"})

SUDO_FIX = (
    "install sudo (apt-get install sudo) and the rule that lets the TRE's account run "
    "sbatch and scancel as the job users (docs/slurm.md, 'The job account'); "
    "'tre cluster check' tries it"
)
_SUBMITTED = re.compile(r"^(\d+)(?:;\S+)?\s*$")


def run(
    args: Sequence[str],
    *,
    timeout: float = TIMEOUT_SECONDS,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one Slurm command; log it; raise SlurmCommandError when it fails."""
    command = [str(a) for a in args]
    log.info("slurm: %s", " ".join(command))
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SlurmCommandError(
            command,
            None,
            "",
            f"{command[0]}: not found on PATH",
            fix=SUDO_FIX
            if command[0] == "sudo"
            else "install Slurm's client commands on this node, or use the local backend",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmCommandError(
            command,
            None,
            "",
            f"no answer within {timeout:.0f}s",
            fix="check that slurmctld is up ('scontrol ping')",
        ) from exc
    if check and result.returncode != 0:
        refused = command[0] == "sudo" and result.stderr.startswith("sudo:")
        raise SlurmCommandError(
            command,
            result.returncode,
            result.stdout,
            result.stderr,
            **({"fix": SUDO_FIX} if refused else {}),
        )
    return result


def as_user(user: str | None) -> list[str]:
    """The prefix that runs a Slurm command as `user` through the site's sudo rule
    (docs/slurm.md: the TRE's account may run sbatch and scancel as the job users, and
    nothing else); none for the TRE's own account. `-n`: never wait for a password."""
    return ["sudo", "-n", "-u", user, "--"] if user else []


def sbatch(
    script: Path,
    *,
    chdir: Path,
    wait: bool = False,
    test_only: bool = False,
    timeout: float = TIMEOUT_SECONDS,
    user: str | None = None,
) -> int:
    """Submit a batch script (as `user`, through sudo); returns the Slurm job id. `wait`
    blocks until it ends; `test_only` asks Slurm whether it would accept the job,
    without submitting (id 0)."""
    args = [*as_user(user), "sbatch", "--parsable", f"--chdir={chdir}"]
    args += ["--wait"] if wait else []
    if test_only:
        result = run([*args, "--test-only", str(script)], timeout=timeout)
        return 0
    result = run([*args, str(script)], timeout=timeout, check=not wait)
    match = _SUBMITTED.match(result.stdout.strip().splitlines()[-1] if result.stdout else "")
    if match is None:
        raise SlurmCommandError(
            ["sbatch", str(script)],
            result.returncode,
            result.stdout,
            result.stderr,
            fix="sbatch answered without a job id",
        )
    return int(match.group(1))


def scancel(
    job_id: int | None = None,
    *,
    name: str | None = None,
    signal: str | None = None,
    user: str | None = None,
    owner: str | None = None,
) -> None:
    """Cancel a job (or every job of this user with `name`, or every job of `owner`), as
    `user` (through sudo) for a job submitted as it; cancelling an ended job is fine."""
    args = [*as_user(user), "scancel"]
    if signal:
        args.append(f"--signal={signal}")
    if name:
        args.append(f"--name={name}")
    if owner:
        args.append(f"--user={owner}")
    if job_id is not None:
        args.append(str(job_id))
    result = run(args, check=False)
    if result.returncode != 0 and "Invalid job id" not in result.stderr:
        raise SlurmCommandError(args, result.returncode, result.stdout, result.stderr)


@dataclass(frozen=True)
class SlurmState:
    """What Slurm says about one job."""

    state: str  # e.g. RUNNING, COMPLETED, TIMEOUT; UNKNOWN if Slurm has forgotten it
    reason: str = ""
    exit_code: str = ""
    nodes: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def retryable(self) -> bool:
        return self.state in RETRYABLE_STATES


def job_state(job_id: int) -> SlurmState:
    """The job's state from squeue, then scontrol, then sacct (if the site has it)."""
    result = run(["squeue", "-h", "-j", str(job_id), "-o", "%T|%r|%N"], check=False)
    line = result.stdout.strip()
    if result.returncode == 0 and line:
        state, reason, nodes = ([*line.split("|"), "", ""])[:3]
        return SlurmState(state, "" if reason == "None" else reason, "", nodes)
    shown = run(["scontrol", "-o", "show", "job", str(job_id)], check=False)
    if shown.returncode == 0 and shown.stdout.strip():
        fields = parse_scontrol(shown.stdout)
        return SlurmState(
            fields.get("JobState", "UNKNOWN"),
            "" if fields.get("Reason") == "None" else fields.get("Reason", ""),
            fields.get("ExitCode", ""),
            fields.get("NodeList", ""),
        )
    accounted = run(
        ["sacct", "-n", "-X", "-P", "-j", str(job_id), "-o", "State,ExitCode,NodeList"], check=False
    )
    if accounted.returncode == 0 and accounted.stdout.strip():
        state, exit_code, nodes = ([*accounted.stdout.strip().splitlines()[0].split("|"), "", ""])[
            :3
        ]
        return SlurmState(state.split()[0], "", exit_code, nodes)
    return SlurmState("UNKNOWN", "Slurm no longer knows this job")


#: How long a node's slurmd may take to accept a connection before tre counts it lost.
NODE_ANSWER_SECONDS = 3.0
_LOST_STATES = ("DOWN", "FAIL", "NOT_RESPONDING", "POWERED_DOWN")


def lost_nodes(nodes: str) -> list[str]:
    """Which of `nodes` (a Slurm node list) are gone: Slurm says so (down, failed, not
    responding), or their slurmd does not accept a connection within a few seconds (a
    node cut off the network, which Slurm notices only after SlurmdTimeout)."""
    names = run(["scontrol", "show", "hostnames", nodes], check=False).stdout.split()
    port = _slurmd_port()
    lost = []
    for name in names:
        fields = parse_scontrol(run(["scontrol", "-o", "show", "node", name], check=False).stdout)
        state = fields.get("State", "")
        if any(word in state for word in _LOST_STATES) or state.endswith("*"):
            lost.append(name)
            continue
        try:
            socket.create_connection(
                (fields.get("NodeAddr", name), port), timeout=NODE_ANSWER_SECONDS
            ).close()
        except OSError:
            lost.append(name)
    return lost


def _slurmd_port() -> int:
    shown = run(["scontrol", "show", "config"], check=False).stdout
    found = re.search(r"^SlurmdPort\s*=\s*(\d+)", shown, re.MULTILINE)
    return int(found.group(1)) if found else 6818


def parse_scontrol(text: str) -> dict[str, str]:
    """`scontrol -o show job` output (one line of Key=Value pairs) as a dict."""
    fields: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def describe(state: SlurmState) -> str:
    """A sentence for people: what the state means."""
    meanings = {
        "TIMEOUT": "the walltime was reached",
        "NODE_FAIL": "a node failed",
        "OUT_OF_MEMORY": "a task ran out of memory",
        "CANCELLED": "it was cancelled",
        "PREEMPTED": "it was preempted",
        "BOOT_FAIL": "a node failed to boot",
        "DEADLINE": "its deadline passed",
        "FAILED": "a task exited with an error",
        "COMPLETED": "it completed",
        "UNKNOWN": "Slurm no longer knows the job",
    }
    text = f"Slurm state {state.state}"
    if state.state in meanings:
        text += f": {meanings[state.state]}"
    if state.reason:
        text += f" (reason {state.reason})"
    if state.exit_code and state.exit_code not in ("0:0", ""):
        text += f", exit code {state.exit_code}"
    return text
