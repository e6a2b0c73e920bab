"""Errors a person can act on.

Every refusal in `tre` is a `TreError`: it names what is wrong, lists every reason at
once, and says how to fix it and whose fix it is. The CLI turns them into a message
and an exit code; no traceback ever reaches a user for bad input.

    TreError                 base: message, reasons, fix, exit_code
    ├── InputError           the input is malformed or names something invalid   (exit 2)
    ├── NotFound             the named person, project, dataset or job is unknown (exit 3)
    ├── PermissionDenied     a policy refuses the action; reasons say which        (exit 4)
    ├── StateError           the object's current state does not allow the action  (exit 5)
    └── PlatformError        the installation is broken (home, keys, backend)      (exit 6)
"""

from __future__ import annotations

from collections.abc import Iterable


class TreError(Exception):
    """Base of every error `tre` reports to a person."""

    exit_code = 1
    #: Whose fix it is: "you" (the person acting) or "the TRE administrators".
    owner = "you"

    def __init__(
        self, message: str, *, reasons: Iterable[str] = (), fix: str | None = None
    ) -> None:
        self.message = message
        self.reasons = list(reasons)
        self.fix = fix
        super().__init__(self.render())

    def __reduce__(self) -> tuple[object, ...]:
        # Errors raised on Dask workers travel back pickled; keep reasons and fix with them.
        return (_rebuild, (type(self), self.message, self.reasons, self.fix))

    def render(self) -> str:
        """The whole message as a person reads it."""
        lines = [self.message]
        lines += [f"  - {reason}" for reason in self.reasons]
        if self.fix:
            lines.append(f"Fix ({self.owner}): {self.fix}")
        return "\n".join(lines)


def _rebuild(cls: type[TreError], message: str, reasons: list[str], fix: str | None) -> TreError:
    error = cls.__new__(cls)
    TreError.__init__(error, message, reasons=reasons, fix=fix)
    return error


class InputError(TreError):
    """The input (a spec, a name, an option) is malformed or invalid."""

    exit_code = 2


class NotFound(TreError):
    """A named object does not exist."""

    exit_code = 3


class PermissionDenied(TreError):
    """A policy refuses the action; `reasons` lists every reason."""

    exit_code = 4


class StateError(TreError):
    """The object's current state does not allow the action."""

    exit_code = 5


class PlatformError(TreError):
    """The installation is broken or unavailable: not the user's input."""

    exit_code = 6
    owner = "the TRE administrators"
