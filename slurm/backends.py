"""Which backend runs a home's jobs: the one place that knows every implementation of
the contract in slurm/backend.py (which imports none of them)."""

from __future__ import annotations

from slurm.backend import Backend
from tre.errors import PlatformError

#: Every backend a home may name (tre.yaml's `backend`). Adding one: its module, its
#: name here and its branch below (docs/architecture.md, "Adding a backend").
BACKENDS = ("local", "slurm-runner", "slurm-cluster")


def get_backend(name: str, profile: str | None = None) -> Backend:
    """The backend called `name` (with the site profile for Slurm backends)."""
    if name == "local":
        from slurm.local import LocalBackend

        return LocalBackend()
    if name in ("slurm-runner", "slurm-cluster"):
        from slurm.slurm_backends import SlurmClusterBackend, SlurmRunnerBackend

        backend = SlurmRunnerBackend if name == "slurm-runner" else SlurmClusterBackend
        return backend(profile)
    raise PlatformError(
        f"unknown backend {name!r}",
        fix=f"set backend in the TRE home's tre.yaml to one of: {', '.join(BACKENDS)}",
    )
