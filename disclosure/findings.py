"""A differencing finding: outputs that disclose together, how, and some of the cells
(`disclosure.differencing` finds them; the report and the review read them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EXAMPLES", "Finding"]

EXAMPLES = 5  # cells named in a finding; the report says how many there are in all


@dataclass(frozen=True)
class Finding:
    """Two outputs that together disclose: which, how, and some of the cells."""

    kind: str  # "recoverable" | "unchecked" | "difference" | "combination"
    status: str  # "fail" | "review"
    outputs: tuple[str, ...]  # two, or more for a combination; the first is always new
    jobs: tuple[int | None, ...]  # None: in the request being checked
    message: str
    cells: tuple[str, ...]  # up to five cells, named by their keys
    count: int  # cells concerned in all

    @property
    def new_outputs(self) -> list[str]:
        """The outputs named that are in the request being checked (a finding on one
        table alone, such as a check cut short by its budget, names "" second)."""
        return [o for o, j in zip(self.outputs, self.jobs, strict=True) if o and j is None]

    @property
    def within_request(self) -> bool:
        """Two or more of the outputs are in the request being checked."""
        return len(self.new_outputs) >= 2

    def as_dict(self) -> dict[str, Any]:
        """As recorded in a report."""
        return {
            "kind": self.kind,
            "status": self.status,
            "outputs": list(self.outputs),
            "jobs": list(self.jobs),
            "message": self.message,
            "cells": list(self.cells),
            "count": self.count,
        }
