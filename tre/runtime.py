"""Where tre's runtime lives on this host: the folders a sandboxed process (a job, the key
service, the key gateway, the preflight probe) is shown read-only, and the TRE homes
inside them to hide.

Decided here, by the application, and handed to the sandbox's command builder
(`slurm.sandbox.Plan.runtime`): the builder is an engine and knows nothing of tre's
packages or of a home's `tre.yaml` (issue 26).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

#: tre's own packages, the only folders of a checkout a job is shown.
PACKAGES = ("tre", "jobs", "policies", "slurm", "disclosure")


def runtime_paths() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The folders the job's Python needs, read-only: the interpreter's prefix, the venv
    and tre's packages (not the rest of a checkout: its .git, bench/ or a home kept
    beside it); and the TRE homes inside them, to hide."""
    candidates = {Path(sys.base_prefix), Path(sys.prefix)}
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            candidates.add(Path(spec.origin).parent)
    runtime = tuple(sorted(p.resolve() for p in candidates if p.exists()))
    hide = []
    for folder in runtime:
        # A demo or test home kept inside the runtime (./.venv/home, say) must not show
        # through (its folders would refuse the job user anyway: this is the second lock).
        hide += [
            p.parent for pattern in ("*/tre.yaml", "*/*/tre.yaml") for p in folder.glob(pattern)
        ]
    return _outermost(runtime), tuple(sorted(set(hide)))


def _outermost(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    kept: list[Path] = []
    for path in sorted(paths, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return tuple(sorted(kept))
