"""The sudoers rule a site installs so that the TRE's service account submits each job as
its job user: `sudo -u tre-job-<k> sbatch`, and nothing else (docs/slurm.md, 'The job
account').

Why sudo: it is how sites already let one account act as others for a narrow purpose,
audited by the site's own logs; Slurm runs a job as the user who submitted it, so the
job then runs as the job user on every node, never as the TRE's account (which the key
service and TRE_HOME trust), and not because root submitted it.

What the rule allows: `sbatch` and `scancel`, by absolute path, as the pool's job users
only (`slurm/job_users.py`). Not a shell, not any other user: root and `tre-keys` are
outside it. sbatch's arguments are left open because a job script is the very thing
submitted; what a job user's job can do is bounded by its sandbox and the key service,
not by this rule. `env_reset` (sudo's default, made explicit): none of the service's
environment reaches a job.
"""

from __future__ import annotations

import re
import shutil

from slurm.job_users import JOB_PREFIX, pool
from tre.errors import InputError

#: A POSIX user name (what useradd accepts by default).
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
ALIAS = "TRE_JOB_USERS"


def render(account: str, job_users: list[str], sbatch: str, scancel: str) -> str:
    """The rule text for `account` (the TRE's service account), letting it run `sbatch`
    and `scancel` (absolute paths) as each of `job_users`."""
    if not _ACCOUNT.fullmatch(account):
        raise InputError(
            f"{account!r} is not a user name sudo would accept",
            fix="give the TRE service account's login name (letters, digits, '_', '-')",
        )
    if account == "root" or account.startswith(JOB_PREFIX):
        raise InputError(
            f"{account!r} cannot be the TRE's service account",
            fix="name the account the tre service runs as (root needs no rule)",
        )
    for command in (sbatch, scancel):
        if not command.startswith("/"):
            raise InputError(
                f"{command!r} is not an absolute path", fix="install Slurm's client commands"
            )
    if not job_users or not all(u.startswith(JOB_PREFIX) for u in job_users):
        raise InputError(
            "no job users to name", fix="make the pool first (python -m slurm.job_users | sh)"
        )
    return "\n".join(
        [
            "# tre: the TRE's service account submits and cancels each job as its job",
            "# user, and nothing else (docs/slurm.md, 'The job account'). Made by",
            "# 'tre cluster sudo-rule'; check with visudo -cf before installing.",
            f"Runas_Alias {ALIAS} = {', '.join(job_users)}",
            f"Cmnd_Alias TRE_SLURM = {sbatch}, {scancel}",
            "Defaults!TRE_SLURM env_reset",
            f"{account} ALL = ({ALIAS}) NOPASSWD: TRE_SLURM",
            "",
        ]
    )


def for_this_host(account: str) -> str:
    """The rule for this host's pool and its Slurm commands."""
    sbatch, scancel = shutil.which("sbatch"), shutil.which("scancel")
    if sbatch is None or scancel is None:
        raise InputError(
            "sbatch and scancel are not on PATH", fix="install Slurm's client commands"
        )
    return render(account, [s.job_user for s in pool()], sbatch, scancel)
