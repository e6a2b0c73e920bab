"""Errors of the job engine.

TreError (tre.errors)
├── InputError
│   └── SpecError        the job spec is malformed or inconsistent  (the researcher's fix)
├── PlatformError
│   └── CodeChanged      a job's code differs from what was submitted; nothing runs
└── StepFailed            a step failed while running; the job ends `failed`
"""

from __future__ import annotations

from tre.errors import InputError, PlatformError, TreError


class SpecError(InputError):
    """The job spec cannot be used as written."""


class StepFailed(TreError):
    """A step raised while running; `message` is safe to show (no row-level data)."""

    exit_code = 7


class CodeChanged(PlatformError):
    """A python step's pickle is not the one submitted: the job folder was changed behind
    tre's back (tre never rewrites a submitted job's code), so the job must not run."""
