"""The pool of OS users jobs run as: one pair per job slot, so two jobs never share a uid.

A sandboxed job runs as the users of one slot, leased to it while it runs
(tre/service/job_slots.py):

    tre-job-<k>    the job's engine (its Dask scheduler and workers, tre's own code)
    tre-code-<k>   its researcher code (python steps), in `tre-job-<k>`'s group, so it
                   reads its own job's inputs and nothing another job was given

Why a pool, not one job user: two jobs running at once on a node are then kept apart
even outside their sandboxes. A job's folder, input and gateway certificate are readable
by its own slot's group only, and processes of one slot cannot signal, trace or read
the memory of another's. On a Slurm cluster the same users exist on every node (the
site's directory service), and the TRE's service account submits each job as its
slot's job user (`sudo -u tre-job-<k> sbatch`, docs/slurm.md).

Every user of the pool is also in the group `tre-job` (DATA_GROUP), which may read the
secured files of the dataset versions a job is shown: ciphertext and wrapped key
material, useless without the key service. The plain user `tre-job` owns that group;
no job runs as it (the sandbox preflight's probe does).

The pool is what exists: slots 0, 1, ... for as long as both users of the slot exist.
`make test` and `make demo` make POOL_SIZE of them (`useradd` lines in `add_commands`).
"""

from __future__ import annotations

import grp
import pwd
from dataclasses import dataclass

from tre.errors import PlatformError

__all__ = ["DATA_GROUP", "POOL_SIZE", "Slot", "add_commands", "pool", "slot"]

DATA_GROUP = "tre-job"
JOB_PREFIX = "tre-job-"
CODE_PREFIX = "tre-code-"
#: Slots `make` creates: as many jobs as may run at once on one host.
POOL_SIZE = 4
#: Slots looked for: a site may make more (one per job that may run at once).
MOST = 256


class NoJobUsers(PlatformError):
    """The OS users jobs run as are missing."""


@dataclass(frozen=True)
class Slot:
    """The OS users and groups of one job slot."""

    index: int
    job_uid: int
    code_uid: int
    gid: int  # tre-job-<k>'s own group: the job's folder and inputs
    data_gid: int  # DATA_GROUP: the granted datasets' ciphertext

    @property
    def job_user(self) -> str:
        return f"{JOB_PREFIX}{self.index}"

    @property
    def code_user(self) -> str:
        return f"{CODE_PREFIX}{self.index}"


def slot(index: int) -> Slot:
    """Slot `index`'s users; NoJobUsers, saying how to make them, if they are missing or
    wrongly grouped (researcher code must share its job's group, nothing else's)."""
    try:
        job = pwd.getpwnam(f"{JOB_PREFIX}{index}")
        code = pwd.getpwnam(f"{CODE_PREFIX}{index}")
        data = grp.getgrnam(DATA_GROUP)
    except KeyError as exc:
        raise NoJobUsers(
            f"the OS users of job slot {index} ({JOB_PREFIX}{index}, {CODE_PREFIX}{index}) "
            f"or the group {DATA_GROUP!r} do not exist",
            fix="create them as root: " + "; ".join(add_commands(index + 1)),
        ) from exc
    if code.pw_gid != job.pw_gid:
        raise NoJobUsers(
            f"the OS user {code.pw_name!r} is not in {job.pw_name!r}'s group, so its "
            "researcher code could not read its job's inputs",
            fix=f"usermod -g {job.pw_gid} {code.pw_name}",
        )
    return Slot(index, job.pw_uid, code.pw_uid, job.pw_gid, data.gr_gid)


def pool() -> list[Slot]:
    """Every slot of this host, in order; NoJobUsers if there is none."""
    found = []
    for index in range(MOST):
        try:
            found.append(slot(index))
        except NoJobUsers:
            if not found:
                raise
            break
    return found


def add_commands(size: int = POOL_SIZE) -> list[str]:
    """The shell commands (as root, idempotent) that make a pool of `size` slots."""
    nologin = "--no-create-home --shell /usr/sbin/nologin"
    lines = [
        f"getent group {DATA_GROUP} >/dev/null || groupadd --system {DATA_GROUP}",
    ]
    for k in range(size):
        job, code = f"{JOB_PREFIX}{k}", f"{CODE_PREFIX}{k}"
        lines += [
            f"id -u {job} >/dev/null 2>&1 || useradd --system --user-group "
            f"--groups {DATA_GROUP} {nologin} {job}",
            f"id -u {code} >/dev/null 2>&1 || useradd --system --gid {job} "
            f"--groups {DATA_GROUP} {nologin} {code}",
        ]
    return lines


if __name__ == "__main__":  # `make sandbox-setup` pipes these to a root shell
    print("\n".join(add_commands()))
