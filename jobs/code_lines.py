"""Where in a researcher's submitted code a column name is written.

polars says which column a frame lacks, but not where the expression that named it was
built: by the time the plan runs (at `ctx.table`), the line that wrote `pl.col("agee")`
is long gone from the stack. The submitted function's compiled code still holds it: a
column name written in the code is a constant, loaded on a line. So tre finds the line
by reading the code the researcher submitted (its pickle, as checked against the
submission's sha256), never by trusting anything the code said at run time: the answer
can only be a line of that code.
"""

from __future__ import annotations

import dis
import re
from collections.abc import Iterator, Mapping
from types import CodeType, FunctionType

import cloudpickle

#: polars' words for a column a frame does not have ('unable to find column "agee"').
_MISSING = re.compile(r'unable to find column "([A-Za-z_][A-Za-z0-9_]{0,127})"')


def missing_column(message: str) -> str | None:
    """The column polars' ColumnNotFoundError says is missing, if it is a valid name."""
    found = _MISSING.search(message)
    return found[1] if found else None


def line_naming(pickles: Mapping[str, bytes], name: str) -> int | None:
    """The first line of the submitted python steps' code where `name` is written as a
    constant (`pl.col("agee")`, `["agee"]`), or None. Unpickles the steps' functions:
    call this only where researcher code may run (its own phase)."""
    for pickled in pickles.values():
        function = _loaded(pickled)
        code = getattr(function, "__code__", None)
        if not isinstance(code, CodeType):
            continue
        lines = sorted(_lines_loading(code, name, _globals_code(function)))
        if lines:
            return lines[0]
    return None


def _loaded(pickled: bytes) -> object:
    """The step's function, or None if its pickle does not load here (no line, then)."""
    try:
        return cloudpickle.loads(pickled)
    except Exception:
        return None


def _globals_code(function: object) -> list[CodeType]:
    """Code of the functions the step's function can call by name in its module (a
    helper that builds the frame), as cloudpickle shipped them."""
    found = []
    namespace = getattr(function, "__globals__", {})
    for value in namespace.values() if isinstance(namespace, dict) else ():
        if isinstance(value, FunctionType) and isinstance(value.__code__, CodeType):
            found.append(value.__code__)
    return found


def _lines_loading(code: CodeType, name: str, others: list[CodeType]) -> Iterator[int]:
    seen: set[int] = set()
    for each in [code, *others]:
        yield from _walk(each, name, seen)


def _walk(code: CodeType, name: str, seen: set[int]) -> Iterator[int]:
    if id(code) in seen:
        return
    seen.add(id(code))
    for instruction in dis.get_instructions(code):
        if instruction.argval == name and instruction.opname.startswith("LOAD_CONST"):
            line = instruction.positions.lineno if instruction.positions else None
            if line:
                yield line
        elif isinstance(instruction.argval, tuple) and name in instruction.argval:
            # A constant tuple or list of names (["age", "agee"]) is folded into one.
            line = instruction.positions.lineno if instruction.positions else None
            if line:
                yield line
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _walk(constant, name, seen)
