"""What the service hands a job's own process: written to <job dir>/input.json at dispatch.

It carries the spec, the secured sources (files, column types, the granted columns) and
the paths of pickled python-step code, with the sha256 each had at submission. No keys:
each source carries the job's signed key grant (a token naming the master keys of its
declared columns, expiring with the job), which the KMS checks at every unwrap. The
token is a credential, so the file is 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobs.code import read_checked
from jobs.spec import JobSpec
from tre.secured.reader import SecuredSource

INPUT = "input.json"


class JobInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = 1
    job_id: int
    spec: JobSpec
    sources: dict[str, dict[str, Any]]
    code: dict[str, str] = {}  # step name -> pickle path relative to the job folder
    # step name -> sha256 of its pickle, as recorded at submission: checked before loading
    code_sha256: dict[str, str] = {}
    top_k: int = 2
    target_rows: int = 1_000_000

    def secured_sources(self) -> dict[str, SecuredSource]:
        return {name: source_from_dict(raw) for name, raw in self.sources.items()}

    def pickles(self, job_dir: Path) -> dict[str, bytes]:
        """Each python step's pickle, every one checked against its submitted sha256 first
        (CodeChanged otherwise), so code changed after submission is never unpickled."""
        return read_checked(job_dir, self.code, self.code_sha256)


def source_to_dict(source: SecuredSource) -> dict[str, Any]:
    return asdict(source)


def source_from_dict(raw: dict[str, Any]) -> SecuredSource:
    """Rebuild a SecuredSource from JSON (lists become the tuples it is made of)."""

    def tuples(value: Any) -> Any:
        return tuple(tuples(v) for v in value) if isinstance(value, list) else value

    return SecuredSource(**{key: tuples(value) for key, value in raw.items()})


def write_input(job_dir: Path, job_input: JobInput) -> None:
    tmp = job_dir / (INPUT + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds the grant
    with os.fdopen(fd, "w") as handle:
        handle.write(job_input.model_dump_json(indent=2))
    os.replace(tmp, job_dir / INPUT)


def read_input(job_dir: Path) -> JobInput:
    return JobInput.model_validate(json.loads((job_dir / INPUT).read_text()))
