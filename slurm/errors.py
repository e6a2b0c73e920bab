"""Errors of the cluster backends.

TreError (tre.errors)
└── PlatformError
    ├── SlurmCommandError    sbatch/squeue/sacct/scancel/scontrol failed: exit code,
    │                        stdout and stderr are kept, the command is named
    └── ProfileError         a site profile is missing or invalid
"""

from __future__ import annotations

from collections.abc import Sequence

from tre.errors import PlatformError


class SlurmCommandError(PlatformError):
    """A Slurm command failed or could not be run."""

    def __init__(
        self,
        args: Sequence[str],
        returncode: int | None,
        stdout: str,
        stderr: str,
        fix: str | None = None,
    ) -> None:
        self.args_ = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        what = "could not be run" if returncode is None else f"exited with {returncode}"
        reasons = [line for line in (stderr.strip() or stdout.strip()).splitlines()[:5]]
        super().__init__(
            f"Slurm command '{' '.join(self.args_)}' {what}",
            reasons=reasons,
            fix=fix
            or "check that Slurm is reachable from this node ('sinfo'), and "
            "'tre cluster check' for the site profile",
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.args_, self.returncode, self.stdout, self.stderr, self.fix))


def _rebuild(
    args: list[str], returncode: int | None, stdout: str, stderr: str, fix: str | None
) -> SlurmCommandError:
    return SlurmCommandError(args, returncode, stdout, stderr, fix)


class ProfileError(PlatformError):
    """A site profile cannot be used."""
