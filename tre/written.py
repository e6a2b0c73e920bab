"""Rules for what a person has just written, as opposed to what tre reads back.

Some rules hold only for new input: sizes and durations need units, free text has no
control characters, a member is listed once. Records read back from the store are
validated without them, so a rule added later never makes an old record unreadable.
Validate new input with `context=AS_WRITTEN`; validators ask `as_written(info)`.

`Title` (one line) and `Prose` (lines and tabs allowed) are the free-text types: a NUL
or another control character in either would be cut short, hidden or shown differently
by a terminal, a browser and a database, so a checker could read something other than
what was written.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo

#: The validation context of input a person has just written (a spec, a request).
AS_WRITTEN: dict[str, Any] = {"as_written": True}

_PROSE_ALLOWED = frozenset("\t\n\r")


def as_written(info: ValidationInfo) -> bool:
    """Whether the value being validated is new input (see AS_WRITTEN)."""
    return bool(info.context and info.context.get("as_written"))


def text_problem(text: str, *, lines: bool) -> str | None:
    """Why `text` cannot be kept as written (a control character), or None."""
    allowed = _PROSE_ALLOWED if lines else frozenset()
    for index, char in enumerate(text):
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cs"):
            name = "a NUL byte" if char == "\0" else f"control character U+{ord(char):04X}"
            kept = "tabs and line breaks" if lines else "no line breaks or tabs"
            return (
                f"it contains {name} at character {index + 1}; write plain text "
                f"({kept} allowed here)"
            )
    return None


def _title(value: str, info: ValidationInfo) -> str:
    if as_written(info):
        if (problem := text_problem(value, lines=False)) is not None:
            raise ValueError(problem)
        if not value.strip():
            raise ValueError("a title needs some words, not only spaces")
    return value


def _prose(value: str, info: ValidationInfo) -> str:
    if as_written(info) and (problem := text_problem(value, lines=True)) is not None:
        raise ValueError(problem)
    return value


Title = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_title)]
Prose = Annotated[str, AfterValidator(_prose)]
