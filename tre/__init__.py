"""tre: a job runner for trusted research environments.

The Python API (`tre.submit`) is imported on first use, so `import tre` stays cheap for
the CLI and for the engines that use tre's foundation modules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JobHandle", "submit"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tre import api

        return getattr(api, name)
    raise AttributeError(f"module 'tre' has no attribute {name!r}")
