"""Turn pydantic validation errors into InputError with one readable line each."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tre.errors import InputError

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, what: str, fix: str | None = None) -> M:
    """`model.model_validate(data)`, or InputError listing every problem."""
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a mapping of field: value", fix=fix)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{what} is not valid", reasons=describe(exc), fix=fix) from None


def describe(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        lines.append(f"{loc}: {message}" if loc else message)
    return lines
