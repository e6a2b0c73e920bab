"""Errors of the job engine.

TreError (tre.errors)
├── InputError
│   └── SpecError        the job spec is malformed or inconsistent  (the researcher's fix)
└── StepFailed            a step failed while running; the job ends `failed`
"""

from __future__ import annotations

from tre.errors import InputError, TreError


class SpecError(InputError):
    """The job spec cannot be used as written."""


class StepFailed(TreError):
    """A step raised while running; `message` is safe to show (no row-level data)."""

    exit_code = 7
