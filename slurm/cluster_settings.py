"""What a Slurm job's own processes need to know about their cluster: written by the
backend to <job dir>/cluster.json, read by `slurm.launch` on every rank."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from slurm.profiles import SiteProfile
from tre.models import Resources, SlurmPlacement

CLUSTER = "cluster.json"


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: int
    name: str
    resources: Resources
    profile: SiteProfile
    placement: SlurmPlacement
    python: str


def write_settings(job_dir: Path, settings: ClusterSettings) -> None:
    tmp = job_dir / (CLUSTER + ".tmp")
    tmp.write_text(settings.model_dump_json(indent=2))
    os.replace(tmp, job_dir / CLUSTER)


def read_settings(job_dir: Path) -> ClusterSettings:
    return ClusterSettings.model_validate(json.loads((job_dir / CLUSTER).read_text()))
