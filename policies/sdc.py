"""Which disclosure-control parameters apply to an output: layered policy files.

Layers, in order (each a flat YAML mapping of parameter: value, see
`policies/sdc/default.yaml` for every name):

1. packaged   `policies/sdc/default.yaml`: the defaults (ACRO's where ACRO has the rule).
2. tre        `TRE_HOME/policies/sdc.yaml`: the TRE's own policy. It replaces any
              default, looser or stricter: the packaged file is a starting point, and the
              TRE (its information governance) owns its policy.
3. dataset    `TRE_HOME/policies/datasets/<dataset>.yaml`, for every dataset an output
              reads (a data owner's conditions).
4. project    `TRE_HOME/policies/projects/<project>.yaml` (a project's agreement).

Dataset and project layers may only tighten: where one asks for a looser value than the
layers before it, the stricter value stays and the report says so in a note. Since
they only tighten, their order does not matter: an output's parameters are the
strictest of the TRE policy, its datasets' and its project's. Every file read is
recorded with its sha256 in the report and the release manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from disclosure import Protection, Rules
from disclosure.errors import DisclosureInputError
from tre import yamlfile
from tre.errors import InputError, PlatformError
from tre.yamlfile import YamlError

__all__ = [
    "STRICTER",
    "PolicyFile",
    "SdcPolicy",
    "default_policy_path",
    "layered_policy",
    "load_sdc_policy",
    "policy_paths",
]

_ORDER_SAME_VALUE = {"review": 0, "fail": 1}

#: For each parameter, which of two values is the stricter.
STRICTER: dict[str, Callable[[Any, Any], Any]] = {
    "threshold": max,
    "dominance_n": max,
    "dominance_k": min,
    "p_ratio": max,
    "min_dof": max,
    "zeros_disclosive": lambda a, b: a or b,
    "same_value": lambda a, b: max(a, b, key=lambda v: _ORDER_SAME_VALUE.get(v, 0)),
    "quantile_side": max,
    "few_values": max,  # checking more predictors is stricter
    # Without suppression a failing table cannot be released at all: the stricter choice.
    "suppress": lambda a, b: a and b,
    "secondary": lambda a, b: a or b,
    "round_to": max,
    "redact_at_or_below": max,
    "totals": lambda a, b: a and b,  # publishing fewer totals is stricter
    "protection_level": max,  # a wider range required of each suppressed cell
    # Noise that differencing cannot remove, and more of it, is the stricter choice.
    "cell_key": lambda a, b: a or b,
    "cell_key_max_noise": max,
    "cell_key_variance": max,
    "cell_key_smallest": max,
    "cell_key_p_stay": min,
}


@dataclass(frozen=True)
class PolicyFile:
    """One policy file that was read: which layer, where, its hash and its parameters."""

    layer: str  # "packaged", "tre", "dataset <name>", "project <name>"
    path: str
    sha256: str
    parameters: dict[str, Any]

    def record(self) -> dict[str, str]:
        """As recorded in a report and a release manifest."""
        return {"layer": self.layer, "path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class SdcPolicy:
    """The parameters that apply, every file they came from, and what was overridden."""

    parameters: dict[str, Any]
    files: list[PolicyFile]
    notes: list[str] = field(default_factory=list)

    @property
    def base(self) -> PolicyFile:
        """The base policy file: the TRE's own, else the packaged default."""
        return next((f for f in self.files if f.layer == "tre"), self.files[0])

    @property
    def path(self) -> str:
        """The base policy file's path."""
        return self.base.path

    @property
    def sha256(self) -> str:
        """The base policy file's sha256."""
        return self.base.sha256

    def rules(self) -> Rules:
        """The rule parameters."""
        return Rules.from_mapping(self.parameters)

    def protection(self) -> Protection:
        """The protection parameters."""
        return Protection.from_mapping(self.parameters)

    def record(self) -> dict[str, Any]:
        """Every file (layer, path, sha256) and every note, for a report or a manifest."""
        return {"files": [f.record() for f in self.files], "notes": list(self.notes)}


def default_policy_path() -> Path:
    """The packaged default policy file."""
    return Path(str(resources.files("policies") / "sdc" / "default.yaml"))


def policy_paths(
    root: Path, project: str | None, datasets: Iterable[str]
) -> list[tuple[str, Path]]:
    """(layer, path) of every policy file that could apply, in order (absent ones too)."""
    folder = root / "policies"
    paths = [("packaged", default_policy_path()), ("tre", folder / "sdc.yaml")]
    paths += [
        (f"dataset {name}", folder / "datasets" / f"{name}.yaml") for name in sorted(set(datasets))
    ]
    if project is not None:
        paths.append((f"project {project}", folder / "projects" / f"{project}.yaml"))
    return paths


def layered_policy(
    root: Path, *, project: str | None = None, datasets: Iterable[str] = ()
) -> SdcPolicy:
    """The policy for an output of `project` reading `datasets`, from the TRE home at
    `root` (see the module docstring for the layers and their precedence)."""
    files = [
        _read(path, layer)
        for layer, path in policy_paths(root, project, datasets)
        if layer == "packaged" or path.exists()
    ]
    parameters = dict(files[0].parameters)
    parameters.update(next((f.parameters for f in files if f.layer == "tre"), {}))
    notes = []
    for policy in files:
        if policy.layer in ("packaged", "tre"):
            continue
        for name, asked in policy.parameters.items():
            current = parameters.get(name)
            kept = STRICTER[name](current, asked) if current is not None else asked
            if current is not None and kept != asked:
                notes.append(
                    f"the {policy.layer} policy asks {name}: {asked!r}, looser than the "
                    f"{current!r} already required; the stricter value applies"
                )
            parameters[name] = kept
    _validate(parameters, "the combined disclosure policy")
    return SdcPolicy(parameters=parameters, files=files, notes=notes)


def load_sdc_policy(path: Path | None = None) -> SdcPolicy:
    """One policy file on its own (the packaged default if `path` is None)."""
    policy = _read(path or default_policy_path(), "packaged" if path is None else "tre")
    return SdcPolicy(parameters=dict(policy.parameters), files=[policy])


def _read(path: Path, layer: str) -> PolicyFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlatformError(
            f"the disclosure policy file {path} cannot be read: {exc.strerror}",
            fix="check the file's permissions (TRE administrators)",
        ) from exc
    try:
        data = yamlfile.load(raw, f"the disclosure policy file {path}")
    except YamlError as exc:
        raise InputError(
            str(exc),
            fix="correct the file (TRE administrators); docs/disclosure.md lists the parameters",
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            f"the disclosure policy file {path} must be a mapping of parameter: value",
            fix="write lines like 'threshold: 10' (docs/disclosure.md lists the parameters)",
        )
    _validate(data, f"the disclosure policy file {path}")
    return PolicyFile(layer, str(path), hashlib.sha256(raw).hexdigest(), data)


def _validate(data: Mapping[str, Any], what: str) -> None:
    """Every problem of a policy mapping at once, as an InputError naming the file."""
    problems: list[str] = []
    for parse in (Rules.from_mapping, Protection.from_mapping):
        try:
            parse(data)
        except DisclosureInputError as exc:
            problems += [p for p in exc.reasons if p not in problems] or [exc.message]
    if problems:
        raise InputError(
            f"{what} is not valid",
            reasons=problems,
            fix="correct it (TRE administrators); docs/disclosure.md lists every parameter "
            "with its allowed values",
        )
