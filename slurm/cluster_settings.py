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
    #: slurm-cluster in a sandboxed home: what each worker job runs instead of `python`
    #: (its sandbox on its node, as the job user, then the interpreter), and the host
    #: folder its worker jobs run and log in. Written by the backend on the service node,
    #: which knows the host's paths; the engine, in its own sandbox, does not.
    worker_command: tuple[str, ...] = ()
    worker_folder: str = ""
    #: slurm-cluster: the port its scheduler listens on (profile's scheduler_ports, by
    #: the job's slot); 0: any free port.
    scheduler_port: int = 0


def write_settings(job_dir: Path, settings: ClusterSettings) -> None:
    tmp = job_dir / (CLUSTER + ".tmp")
    tmp.write_text(settings.model_dump_json(indent=2))
    os.replace(tmp, job_dir / CLUSTER)


def read_settings(job_dir: Path) -> ClusterSettings:
    return ClusterSettings.model_validate(json.loads((job_dir / CLUSTER).read_text()))
