"""The TRE's bounds on the work one job can make tre do, so that no job holds up another.

`TRE_HOME/policies/limits.yaml` (optional, a flat mapping; every name below, each with
its default) is the TRE's own choice. The defaults are far beyond what a real analysis
meets, and low enough that the work they allow takes seconds:

- `steps_per_job`: a job with more steps is refused at submission ("split the job").
- `outputs_per_job`: a job whose steps make more outputs (a python step can make many)
  fails with that reason instead of being checked.
- `differencing_pairs`, `differencing_seconds`: the differencing check compares at most
  this many pairs of tables, for at most this long; past either, every table with a pair
  left uncompared gets an "unchecked" finding for a checker (`disclosure.differencing`).
- `check_seconds`, `check_memory`: the whole disclosure check of one job (rules,
  suppression, differencing, reports) runs in its own process under these limits; past
  them the job fails with that reason, and the dispatcher carries on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tre import yamlfile
from tre.errors import PlatformError
from tre.units import format_memory, parse_memory

__all__ = ["Limits", "limits_path", "load_limits"]

FILE = "limits.yaml"


def _memory(value: Any) -> int:
    return parse_memory(value)


class Limits(BaseModel):
    """Bounds on one job's work (see the module docstring for each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps_per_job: int = Field(default=200, ge=1, le=100_000)
    outputs_per_job: int = Field(default=1_000, ge=1, le=1_000_000)
    differencing_pairs: int = Field(default=20_000, ge=0)
    differencing_seconds: float = Field(default=60.0, gt=0)
    check_seconds: float = Field(default=900.0, gt=0)
    check_memory: Annotated[int, BeforeValidator(_memory)] = Field(default=8 << 30, gt=0)

    def describe(self) -> str:
        """One line for logs and docs."""
        return (
            f"{self.steps_per_job} steps and {self.outputs_per_job} outputs per job; "
            f"differencing {self.differencing_pairs:,} pairs or {self.differencing_seconds:g}s; "
            f"checking {self.check_seconds:g}s and {format_memory(self.check_memory)}"
        )


def limits_path(home_root: Path) -> Path:
    """Where a home's limits file is (it need not exist)."""
    return home_root / "policies" / FILE


def load_limits(home_root: Path) -> Limits:
    """The home's limits: its file over the defaults; PlatformError naming every bad field."""
    path = limits_path(home_root)
    if not path.exists():
        return Limits()
    try:
        data = yamlfile.load(path.read_bytes(), what=str(path))
    except (OSError, ValueError) as exc:
        raise PlatformError(
            f"the TRE's limits file {path} cannot be read: {exc}",
            fix="correct it (policies/limits.py lists every field and its default)",
        ) from None
    try:
        return Limits.model_validate(data or {})
    except ValidationError as exc:
        raise PlatformError(
            f"the TRE's limits file {path} is not valid",
            reasons=[
                f"{'.'.join(str(p) for p in err['loc']) or 'the file'}: {err['msg']}"
                for err in exc.errors()
            ],
            fix="correct it (policies/limits.py lists every field and its default)",
        ) from None
