"""Which disclosure-control rule parameters apply: read from a policy file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tre.errors import InputError, PlatformError


@dataclass(frozen=True)
class SdcPolicy:
    """Rule parameters as written in a policy file, with where they came from."""

    parameters: dict[str, Any]
    path: str
    sha256: str


def default_policy_path() -> Path:
    return Path(str(resources.files("policies") / "sdc" / "default.yaml"))


def load_sdc_policy(path: Path | None = None) -> SdcPolicy:
    """Read a policy file (the packaged default if `path` is None)."""
    path = path or default_policy_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlatformError(
            f"the disclosure policy file {path} cannot be read: {exc.strerror}",
            fix="check sdc_policy in the TRE home's tre.yaml",
        ) from exc
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InputError(f"the disclosure policy file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"the disclosure policy file {path} must be a mapping of rule: value")
    return SdcPolicy(parameters=data, path=str(path), sha256=hashlib.sha256(raw).hexdigest())
