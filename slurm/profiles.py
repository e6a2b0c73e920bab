"""Site profiles: how one HPC site runs tre's jobs on its Slurm cluster.

A profile is a YAML file, validated here, that says which partitions jobs may use, how
a project maps to a Slurm account, QoS, module loads and other set-up, network
interfaces, node-local scratch, the Python on the nodes, worker lifetimes, TLS and
retries. `slurm/profiles/` ships `hartree-style.yaml` (a documented template with
placeholders) and `local-test.yaml` (the single-node test cluster).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from slurm.errors import ProfileError
from tre import yamlfile
from tre.models import SlurmPlacement
from tre.names import SlurmName
from tre.units import parse_duration
from tre.yamlfile import YamlError


class SiteProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name, e.g. 'hartree-style'.")
    description: str = ""
    backend: Literal["slurm-runner", "slurm-cluster"] = Field(
        default="slurm-runner",
        description="slurm-runner: one allocation per job (scheduler, engine and workers "
        "inside it). slurm-cluster: workers as Slurm jobs, engine on the service node.",
    )
    partition: SlurmName | None = Field(default=None, description="Default partition.")
    partitions: list[SlurmName] = Field(
        default_factory=list, description="Partitions projects may use (empty: any)."
    )
    account: str | None = Field(
        default=None,
        description="Slurm account for a project's jobs; '{project}' is replaced by the "
        "project name. A project's own account wins.",
    )
    qos: SlurmName | None = None
    exclusive: bool = Field(default=False, description="Ask for whole nodes (--exclusive).")
    sbatch_extra: list[str] = Field(
        default_factory=list, description="More #SBATCH options, e.g. '--constraint=skylake'."
    )
    prologue: list[str] = Field(
        default_factory=list,
        description="Shell lines run before the job on each allocation: module loads, "
        "environment set-up (dask-jobqueue's job_script_prologue).",
    )
    python: str | None = Field(
        default=None,
        description="The Python interpreter on the compute nodes with tre installed "
        "(default: the service's own interpreter, for a shared install).",
    )
    interface: str | None = Field(default=None, description="Workers' network interface (ib0).")
    scheduler_interface: str | None = Field(
        default=None, description="The job scheduler's network interface (default: interface)."
    )
    scheduler_ports: str | None = Field(
        default=None,
        description="slurm-cluster: the ports of the service node its jobs' Dask schedulers "
        "listen on, FIRST-LAST, one per slot of the job users' pool (a job in slot k uses "
        "FIRST+k): the compute nodes' fence lets these through to the service node, and no "
        "other. Unset: any free port (only where nothing fences the nodes off it).",
        pattern=r"^[0-9]{1,5}-[0-9]{1,5}$",
    )
    local_directory: str = Field(
        default="/tmp",  # noqa: S108 - node-local scratch root; each job has its own folder
        description="Node-local scratch for Dask's local_directory ($TMPDIR allowed); wiped "
        "when the job ends.",
    )
    lifetime_margin: int = Field(
        default=300,
        description="Workers retire this long before the walltime (--lifetime), e.g. '5m'.",
    )
    lifetime_stagger: int = Field(default=60, description="Spread of worker retirements.")
    tls: bool = Field(
        default=True,
        description="Encrypt scheduler-worker traffic (decrypted data crosses the network).",
    )
    retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Attempts after a node failure or preemption (never after a timeout).",
    )
    startup_timeout: int = Field(
        default=600, description="How long a job may wait for its scheduler and workers."
    )
    worker_death_timeout: int = Field(
        default=60, description="slurm-cluster: workers exit this long after losing the job."
    )
    outside_probe: str | None = Field(
        default=None,
        description="HOST:PORT outside the cluster that compute nodes must not reach: "
        "'tre cluster check' tries it from a node and fails if it connects. Unset: not "
        "tried (a node on this machine's own network would send the attempt out).",
        pattern=r"^[A-Za-z0-9.:-]{1,253}:[0-9]{1,5}$",
    )
    key_gateway: str | None = Field(
        default=None,
        description="HOST:PORT where compute nodes reach the key gateway on the service "
        "node, over mutual TLS (docs/keys.md). Unset: jobs reach the key service's Unix "
        "socket, so they must run on the service node itself.",
        pattern=r"^[A-Za-z0-9.:-]{1,253}:[0-9]{1,5}$",
    )

    submit_via_sudo: bool = Field(
        default=False,
        description="Submit each job as its job user (its slot of the job users' pool, "
        "slurm/job_users.py) through 'sudo -u <job user> sbatch', as sites do: the "
        "allocation then runs as that user, never as the TRE's own account, and its "
        "sandbox is bubblewrap's unprivileged one. Needs the sudo rule of docs/slurm.md "
        "and the key gateway (a job user cannot reach the key service's socket).",
    )

    @model_validator(mode="after")
    def _sudo_needs_gateway(self) -> SiteProfile:
        if self.submit_via_sudo and (self.backend != "slurm-runner" or not self.key_gateway):
            raise ValueError(
                "submit_via_sudo needs backend slurm-runner and a key_gateway: a job running "
                "as its job user reaches keys only over the key gateway"
            )
        return self

    @model_validator(mode="after")
    def _ports_in_order(self) -> SiteProfile:
        if self.scheduler_ports:
            first, last = self.port_range()
            if not 1024 <= first <= last <= 65535:
                raise ValueError(
                    "scheduler_ports must be FIRST-LAST with 1024 <= FIRST <= LAST <= 65535"
                )
        return self

    def port_range(self) -> tuple[int, int]:
        """scheduler_ports as (first, last); (0, -1) when unset."""
        if not self.scheduler_ports:
            return 0, -1
        first, last = self.scheduler_ports.split("-")
        return int(first), int(last)

    @field_validator(
        "lifetime_margin",
        "lifetime_stagger",
        "startup_timeout",
        "worker_death_timeout",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> int:
        return parse_duration(value)  # type: ignore[arg-type]

    @field_validator("prologue", "sbatch_extra")
    @classmethod
    def _one_line_each(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ValueError("each entry must be one line")
        return lines

    def placement_for(self, project: str, own: SlurmPlacement) -> SlurmPlacement:
        """The project's placement, with the profile's defaults filled in and checked."""
        account = own.account or (self.account.format(project=project) if self.account else None)
        placed = SlurmPlacement(
            account=account, partition=own.partition or self.partition, qos=own.qos or self.qos
        )
        if self.partitions and placed.partition and placed.partition not in self.partitions:
            raise ProfileError(
                f"partition {placed.partition!r} is not one this site lets tre use",
                fix=f"use one of: {', '.join(self.partitions)}",
            )
        return placed


def profile_dir() -> Path:
    return Path(str(resources.files("slurm") / "profiles"))


def available() -> list[str]:
    return sorted(p.stem for p in profile_dir().glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> SiteProfile:
    """A packaged profile by name (e.g. 'local-test') or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = profile_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        raise ProfileError(
            f"no site profile {str(name_or_path)!r}",
            fix=f"use one of: {', '.join(available())}, or the path of a YAML profile",
        )
    try:
        data = yamlfile.load(path.read_bytes(), f"site profile {path}")
        placeholders = sorted(_placeholders(data))
        if placeholders:
            raise ProfileError(
                f"site profile {path} still has placeholders to fill in",
                reasons=[f"{where}: {value}" for where, value in placeholders],
                fix="replace each <...> with your site's value (see the comments in the file)",
            )
        return SiteProfile.model_validate(data)
    except YamlError as exc:
        raise ProfileError(str(exc)) from None
    except ValidationError as exc:
        raise ProfileError(
            f"site profile {path} is not valid",
            reasons=[f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()],
            fix="see slurm/profiles/hartree-style.yaml for every field, with comments",
        ) from None


def _placeholders(data: object, where: str = "") -> list[tuple[str, str]]:
    """Every `<...>` value left in a template, with where it is."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _placeholders(v, f"{where}{k}")]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _placeholders(v, f"{where}[{i}]")]
    if isinstance(data, str) and re.search(r"<[^<>]+>", data):
        return [(where, data)]
    return []
