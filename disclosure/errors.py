"""Errors of the disclosure engine, each one a person can act on.

    DisclosureError              base: message, reasons, fix
    └── DisclosureInputError     a table, a rule or an argument is not valid (also a ValueError)

`disclosure` stands alone (polars and the standard library only), so it does not use
`tre.errors`; the service layer turns these into `tre.errors.InputError` at its edge,
keeping `message`, `reasons` and `fix`.
"""

from __future__ import annotations

from collections.abc import Iterable


class DisclosureError(Exception):
    """Base of every error the disclosure engine raises."""

    def __init__(
        self, message: str, *, reasons: Iterable[str] = (), fix: str | None = None
    ) -> None:
        self.message = message
        self.reasons = list(reasons)
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """The whole message as a person reads it: what, every reason, and the fix."""
        lines = [self.message]
        lines += [f"  - {reason}" for reason in self.reasons]
        if self.fix:
            lines.append(f"Fix: {self.fix}")
        return "\n".join(lines)


class DisclosureInputError(DisclosureError, ValueError):
    """A table, rule parameter or argument is not valid: the caller's to fix."""
