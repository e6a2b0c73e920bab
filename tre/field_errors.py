"""pydantic's validation errors as the problems a person reads: one per thing to fix.

pydantic reports a value that fits no member of a union once per member it tried
(`value.str`, `value.int`, `value.float`, ...). Here those become one problem at the
value's own place saying what is allowed, or, when the value had the shape of one
member (a list, a mapping), that member's own problems. Each caller writes the place
(`loc`) its own way: a job spec as `steps.0.filter`, a descriptor by column name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = ["Problem", "problems"]

Loc = tuple[int | str, ...]

#: How a union member is named in a location: a type, not a field.
_MEMBER = re.compile(
    r"^(str|int|float|bool|none|bytes|date|datetime|time|decimal|"
    r"(list|dict|set|tuple|union|literal|function-\w+|constrained-\w+|nullable)\[.*\]|"
    r"constrained-\w+|json-or-python\[.*\]|lax-or-strict\[.*\])$"
)
_MEMBER_WORDS = {
    "str": "text",
    "int": "a number",
    "float": "a number",
    "bool": "true/false",
    "none": "nothing (null)",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a date and time",
    "list": "a list of those",
    "dict": "a mapping",
}


@dataclass(frozen=True)
class Problem:
    """One thing to fix: where (pydantic's location, union members removed) and what."""

    loc: Loc
    message: str
    type: str


def problems(exc: ValidationError) -> list[Problem]:
    """Every problem in `exc`, union attempts collapsed, in pydantic's order."""
    return _collapse(
        [
            Problem(tuple(err["loc"]), str(err["msg"]).removeprefix("Value error, "), err["type"])
            for err in exc.errors()
        ],
        [err.get("input") for err in exc.errors()],
    )


def _member_at(loc: Loc) -> int | None:
    return next((i for i, part in enumerate(loc) if _is_member(part)), None)


def _is_member(part: int | str) -> bool:
    return isinstance(part, str) and _MEMBER.match(part) is not None


def _collapse(found: list[Problem], inputs: Sequence[Any]) -> list[Problem]:
    out: list[Problem] = []
    groups: dict[Loc, list[tuple[str, Problem, Any]]] = {}
    order: list[Loc | int] = []
    for index, problem in enumerate(found):
        at = _member_at(problem.loc)
        if at is None:
            order.append(index)
            continue
        place = problem.loc[:at]
        if place not in groups:
            groups[place] = []
            order.append(place)
        rest = Problem(place + problem.loc[at + 1 :], problem.message, problem.type)
        groups[place].append((str(problem.loc[at]), rest, inputs[index]))
    for item in order:
        if isinstance(item, int):
            out.append(found[item])
        else:
            out += _one_union(item, groups[item])
    return out


def _one_union(place: Loc, tried: list[tuple[str, Problem, Any]]) -> list[Problem]:
    """The problems of one value that fit no member of its union."""
    members = list(dict.fromkeys(member for member, _, _ in tried))
    deeper = [m for m in members if any(p.loc != place for mm, p, _ in tried if mm == m)]
    if deeper or len(members) == 1:
        # The value had this member's shape (a list, a model): its own problems say more.
        chosen = min(deeper or members, key=lambda m: sum(mm == m for mm, _, _ in tried))
        picked = [p for mm, p, _ in tried if mm == chosen]
        return _collapse(picked, [i for mm, _, i in tried if mm == chosen])
    words = list(dict.fromkeys(_member_words(m, p) for m, p, _ in tried))
    allowed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + f", or {words[-1]}"
    got = _kind_of(tried[0][2])
    return [Problem(place, f"should be {allowed}" + (f", not {got}" if got else ""), "union")]


def _member_words(member: str, problem: Problem) -> str:
    base = member.split("[", 1)[0]
    if base in _MEMBER_WORDS:
        return _MEMBER_WORDS[base]
    return problem.message.removeprefix("Input should be ")


def _kind_of(value: Any) -> str | None:
    """What the value was, without quoting it."""
    if isinstance(value, bool):
        return "true/false"
    for kind, name in ((dict, "a mapping"), (list, "a list"), (str, "text")):
        if isinstance(value, kind):
            return name
    if isinstance(value, int | float):
        return "a number"
    return None if value is None else type(value).__name__
