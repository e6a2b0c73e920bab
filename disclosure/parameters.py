"""Checking the parameters of a policy file: the rules' and the protection's, as one mapping.

A policy file is one flat mapping (`threshold: 10`, `round_to: 5`, ...). `Rules` and
`Protection` each take their own names from it; `problems` reports, all at once, every
unknown name (with the closest known one) and every value of the wrong type or range.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Parameter", "parameter_problem", "problems"]


@dataclass(frozen=True)
class Parameter:
    """One parameter: its type, what values it allows (in words) and the range check."""

    kind: type  # int, float, bool or str
    allowed: str
    valid: Callable[[object], bool] = lambda value: True


def parameter_problem(name: str, parameter: Parameter, value: object) -> str | None:
    """What is wrong with one value, or None."""
    wrong = f"{name} is {value!r}; it must be {parameter.allowed}"
    if parameter.kind is bool:
        return None if isinstance(value, bool) else wrong
    if parameter.kind is str:
        return None if isinstance(value, str) and parameter.valid(value) else wrong
    # bool is an int to Python, never to a policy writer.
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (parameter.kind is int and not isinstance(value, int)):
        return wrong
    return None if parameter.valid(value) else wrong


def problems(
    data: Mapping[str, object],
    mine: Mapping[str, Parameter],
    others: Mapping[str, Parameter],
) -> list[str]:
    """Every problem with `data`: names neither `mine` nor `others` know, and values of
    `mine` that are not allowed (the others' values are theirs to check)."""
    known = [*mine, *others]
    found = []
    for name in data:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(f"unknown parameter {name!r}{hint}; the parameters are {', '.join(known)}")
    found += [
        problem
        for name, value in data.items()
        if name in mine and (problem := parameter_problem(name, mine[name], value)) is not None
    ]
    return found
