"""Validation of every name a user gives: people, projects, datasets, columns, outputs.

Names end up in paths, SQL parameters, Parquet column selections and HTML; one strict
grammar each keeps all of those safe without escaping tricks.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_PATTERNS = {
    "person": (
        re.compile(r"^[a-z_][a-z0-9._-]{0,63}$"),
        "lower-case letters, digits, '.', '_' or '-', starting with a letter or '_'",
    ),
    "object": (
        re.compile(r"^[a-z][a-z0-9_-]{0,62}$"),
        "lower-case letters, digits, '_' or '-', starting with a letter, at most 63",
    ),
    "column": (
        re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"),
        "letters, digits and '_', not starting with a digit, at most 128",
    ),
    # Slurm accounts, partitions and QoS end up in #SBATCH lines.
    "slurm": (
        re.compile(r"^[A-Za-z0-9_.+-]{1,64}$"),
        "letters, digits, '_', '.', '+' or '-', at most 64",
    ),
}


def check_name(value: str, kind: str, what: str | None = None) -> str:
    """Return `value` if it is a valid name of `kind`; ValueError says the grammar."""
    pattern, grammar = _PATTERNS[kind]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{what or kind + ' name'} {value!r} is not allowed: use {grammar}")
    return value


def _person(value: str) -> str:
    return check_name(value, "person")


def _object(value: str) -> str:
    return check_name(value, "object")


def _column(value: str) -> str:
    return check_name(value, "column")


def _slurm(value: str) -> str:
    return check_name(value, "slurm", "Slurm name")


PersonName = Annotated[str, AfterValidator(_person)]
SlurmName = Annotated[str, AfterValidator(_slurm)]
ObjectName = Annotated[str, AfterValidator(_object)]
ColumnName = Annotated[str, AfterValidator(_column)]
