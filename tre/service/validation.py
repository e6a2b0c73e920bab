"""Turn pydantic validation errors into InputError with one readable line each."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tre.errors import InputError
from tre.field_errors import problems
from tre.written import AS_WRITTEN

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, what: str, fix: str | None = None) -> M:
    """`model.model_validate(data)` held to the rules for new input (`tre.written`), or
    InputError listing every problem."""
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a mapping of field: value", fix=fix)
    try:
        return model.model_validate(data, context=AS_WRITTEN)
    except ValidationError as exc:
        raise InputError(f"{what} is not valid", reasons=describe(exc), fix=fix) from None


def describe(exc: ValidationError) -> list[str]:
    lines = []
    for problem in problems(exc):
        loc = ".".join(str(p) for p in problem.loc)
        message = problem.message
        if problem.type == "extra_forbidden":
            message = "unknown field (check the spelling)"
        lines.append(f"{loc}: {message}" if loc else message)
    return lines
