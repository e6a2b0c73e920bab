"""The TRE home: one folder that holds all state of an installation.

TRE_HOME/
  tre.yaml        what kind of home this is (format version, demo or not)
  state.db        SQLite state store (WAL), including the hash-chained audit log
  audit.head      the latest audit hash, so a truncated log is noticed
  keys/           local key store: master keys, 0600 files in a 0700 folder (the key
                  service's own user owns it in a sandboxed home)
  keyservice/     the key service's lock, pid and log
  data/           secured (encrypted) Parquet, one folder per dataset version
  jobs/<id>/      a job's spec, code, logs, raw outputs and disclosure report
  releases/<id>/  released outputs with their manifest
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tre import yamlfile
from tre.errors import PlatformError
from tre.keys.masterkeys import KmsSettings
from tre.models import utcnow

HOME_FORMAT = 1
ENV_VAR = "TRE_HOME"


class HomeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = HOME_FORMAT
    demo: bool = False
    created_by: str
    created_at: str
    backend: str = "local"  # local | slurm-runner | slurm-cluster
    slurm_profile: str | None = None  # a packaged profile's name or a YAML file's path
    kms: str = "local"  # where master keys live: local (TRE_HOME/keys) | pkcs11 (an HSM)
    pkcs11_module: str | None = None  # the HSM's PKCS#11 library (docs/keys.md)
    pkcs11_token: str | None = None  # the label of the token holding tre's keys
    pkcs11_pin_file: str | None = None  # a 0600 file with the token's user PIN
    # Folders an HSM's client needs besides SoftHSM's own (its configuration, a token
    # store), shown read-write in the key service's sandbox (tre/keyservice/sandbox.py).
    pkcs11_paths: list[str] = []
    # sandbox: master keys only in the key service (its own OS user), jobs in a bubblewrap
    # sandbox as the job user (docs/threat-model.md). none: homes made before it, and
    # development machines without root, where researcher code is trusted.
    isolation: Literal["sandbox", "none"] = "none"


def default_home() -> Path:
    """TRE_HOME if set, else ./.tre (the embedded default for one machine)."""
    return Path(os.environ.get(ENV_VAR) or ".tre").absolute()


@dataclass(frozen=True)
class Home:
    root: Path
    config: HomeConfig

    @property
    def db_path(self) -> Path:
        return self.root / "state.db"

    @property
    def audit_head(self) -> Path:
        return self.root / "audit.head"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def tag(self) -> str:
        """A short, stable tag of this home, so its jobs' names on a shared cluster never
        collide with another home's (tre-<tag>-<job id>)."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:6]

    @property
    def key_socket(self) -> Path:
        """The key service's socket: short (Unix socket paths are limited to 107 bytes),
        and outside TRE_HOME so a job can be handed the socket alone."""
        tag = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        if os.geteuid() == 0:
            return Path("/run/tre") / tag / "keys.sock"
        return Path(tempfile.gettempdir()) / f"tre-{os.getuid()}" / tag / "keys.sock"

    def kms_settings(self) -> KmsSettings:
        """How this home's processes reach its master keys: through the key service in a
        sandboxed home (nothing else holds them), else directly (HomeConfig.kms)."""
        if self.config.isolation == "sandbox":
            return KmsSettings.service(str(self.key_socket), self.keys.absolute())
        return self.backing_kms_settings()

    def backing_kms_settings(self) -> KmsSettings:
        """Where the master keys are kept (HomeConfig.kms and its settings): what the
        key service opens, or every process of an unsandboxed home."""
        return KmsSettings(
            kind=self.config.kms,
            keys_root=str(self.keys.absolute()),
            pkcs11_module=self.config.pkcs11_module or "",
            pkcs11_token=self.config.pkcs11_token or "",
            pkcs11_pin_file=self.config.pkcs11_pin_file or "",
        )

    def job_dir(self, job_id: int) -> Path:
        return self.jobs / f"{job_id:06d}"

    def release_dir(self, job_id: int) -> Path:
        return self.releases / f"{job_id:06d}"

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        created_by: str,
        demo: bool = False,
        backend: str = "local",
        slurm_profile: str | None = None,
        isolation: Literal["sandbox", "none"] = "sandbox",
    ) -> Home:
        """Make a new, empty home at `root`; refuses to touch an existing one."""
        root = root.absolute()
        if (root / "tre.yaml").exists():
            raise PlatformError(
                f"a TRE home already exists at {root}",
                fix="use it as it is, or choose another folder with --home or TRE_HOME",
            )
        if root.exists() and any(root.iterdir()):
            raise PlatformError(
                f"{root} is not empty, so it cannot become a TRE home",
                fix="choose a new or empty folder",
            )
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(root, 0o700)  # other users of the machine have no business here
        config = HomeConfig(
            demo=demo,
            created_by=created_by,
            created_at=utcnow().isoformat(),
            backend=backend,
            slurm_profile=slurm_profile,
            isolation=isolation,
        )
        home = cls(root, config)
        for folder in (home.keys, home.data, home.jobs, home.releases):
            folder.mkdir(mode=0o700)
        home.save_config()
        return home

    def save_config(self) -> None:
        """Write tre.yaml atomically, readable by the TRE alone (job users may pass
        through a home whose jobs reach their own folders: tre/service/sandboxing.py)."""
        tmp = self.root / "tre.yaml.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(yaml.safe_dump(self.config.model_dump(), sort_keys=False))
        os.replace(tmp, self.root / "tre.yaml")

    @classmethod
    def open(cls, root: Path | None = None) -> Home:
        """Open an existing home; PlatformError says what is missing and how to fix it."""
        root = (root or default_home()).absolute()
        config_path = root / "tre.yaml"
        if not config_path.exists():
            raise PlatformError(
                f"no TRE home at {root}",
                fix="create one with 'tre init' (or 'tre init --demo' to try it out), "
                "or point TRE_HOME / --home at an existing home",
            )
        try:
            raw = yamlfile.load(config_path.read_bytes(), config_path.name)
            config = HomeConfig.model_validate(raw)
        except (yamlfile.YamlError, ValidationError, OSError) as exc:
            raise PlatformError(
                f"the TRE home at {root} is corrupt: {config_path.name} cannot be read",
                reasons=_describe(exc),
                fix="restore the home from backup; do not edit tre.yaml by hand",
            ) from exc
        if config.format != HOME_FORMAT:
            raise PlatformError(
                f"the TRE home at {root} has format {config.format}; "
                f"this tre reads format {HOME_FORMAT}",
                fix="use the tre version that made this home",
            )
        home = cls(root, config)
        missing = [
            p.name
            for p in (home.keys, home.data, home.jobs, home.releases, home.db_path)
            if not p.exists()
        ]
        if missing:
            raise PlatformError(
                f"the TRE home at {root} is corrupt: missing {', '.join(missing)}",
                fix="restore the home from backup",
            )
        return home


def _describe(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(map(str, e['loc'])) or 'tre.yaml'}: {e['msg']}" for e in exc.errors()]
    return [str(exc).splitlines()[0]]
