"""Progress of a running job, written to <job dir>/progress.json for `tre status` and the
dispatcher's progress bars (the job may run on another node; the folder is shared)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

PROGRESS = "progress.json"


class ProgressFile:
    """Records (step, done, total); writes at most every `interval` seconds, and at ends."""

    def __init__(self, job_dir: Path, interval: float = 0.5) -> None:
        self.path = job_dir / PROGRESS
        self.interval = interval
        self.steps: dict[str, dict[str, int]] = {}
        self._written = 0.0

    def started(self) -> None:
        """Say the job's program is up (before any step): a job that ends without this
        file never started, and the dispatcher says so (`tre.service.dispatcher`). A full
        disk is not an error here: the job fails and says so where it can."""
        with contextlib.suppress(OSError):
            self._write()

    def __call__(self, step: str, done: int, total: int) -> None:
        self.steps[step] = {"done": done, "total": total}
        now = time.monotonic()
        if done in (0, total) or now - self._written >= self.interval:
            self._written = now
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(PROGRESS + ".tmp")
        tmp.write_text(json.dumps({"steps": self.steps, "at": time.time()}))
        os.replace(tmp, self.path)


def read_progress(job_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((job_dir / PROGRESS).read_text()))
    except (OSError, ValueError):
        return {}
