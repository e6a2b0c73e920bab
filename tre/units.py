"""Parse and print the units people write in specs: memory sizes and durations.

What a person writes must carry its unit: `memory: 4` or `walltime: 30` is refused, not
read as 4 bytes or 30 seconds (callers parsing what a person wrote pass
`bare_numbers=False`). Text without a unit, such as '30', is refused everywhere. A bare
integer stands only as tre's own canonical form (bytes, seconds), as in records read
back from the store. A clock is read one way only, `HH:MM:SS` or Slurm's `D-HH:MM:SS`:
a two-part clock such as `2:00` is refused, because Slurm reads it as minutes:seconds
where people mean hours:minutes, and a minute or second of 60 or more is refused.
"""

from __future__ import annotations

import re

_MEMORY_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
#: One letter is read two ways: Slurm's '2G' is 2GiB, Dask's 2GB. Refused, naming both.
_AMBIGUOUS_MEMORY_UNITS = ("k", "m", "g", "t")
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
_AMOUNT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_CLOCK_RE = re.compile(r"^\s*(?:(\d+)-)?(\d+(?::\d+)*)\s*$")

_MEMORY_FORMS = "for example '4GiB', '512MiB' or '8GB'"
_DURATION_FORMS = "for example '30m', '2h', '1d', '01:30:00' (HH:MM:SS) or '2-00:00:00'"


def parse_memory(value: str | int, *, bare_numbers: bool = True) -> int:
    """Bytes in '4GiB' or '512MB'; ValueError saying the accepted forms. A bare
    integer is taken as bytes unless `bare_numbers` is false (what a person wrote)."""
    number = _bare_number(value, bare_numbers, "memory", _MEMORY_FORMS)
    if number is not None:
        return number
    if (bare := _number_text(value)) is not None:
        raise ValueError(
            f"memory {value!r} has no unit (a bare number would mean {bare} bytes): write the "
            f"unit after the number, e.g. '{bare}GiB' or '{bare}MiB'"
        )
    match = _AMOUNT_RE.match(str(value))
    unit = match.group(2).lower() if match else ""
    if match is not None and unit in _AMBIGUOUS_MEMORY_UNITS:
        amount, letter = match.group(1), match.group(2)
        raise ValueError(
            f"memory {value!r} is ambiguous: Slurm reads {letter} as {letter.upper()}iB "
            f"(1024s), Dask as {letter.upper()}B (1000s); write '{amount}{letter.upper()}iB' "
            f"or '{amount}{letter.upper()}B'"
        )
    if match is None or unit not in _MEMORY_UNITS:
        raise ValueError(
            f"cannot read memory size {value!r}: write a number and a unit, {_MEMORY_FORMS}"
        )
    size = int(float(match.group(1)) * _MEMORY_UNITS[unit])
    if size <= 0:
        raise ValueError(f"memory must be positive, got {value!r}")
    return size


def format_memory(n_bytes: int) -> str:
    """The shortest exact binary form: 4294967296 -> '4GiB'."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n_bytes % size == 0:
            return f"{n_bytes // size}{unit}"
    return f"{n_bytes}B"


def parse_duration(value: str | int, *, bare_numbers: bool = True) -> int:
    """Seconds in '30m', '2h', '1d', '01:30:00' or '2-00:00:00' (Slurm's form). A bare
    integer is taken as seconds unless `bare_numbers` is false (what a person wrote)."""
    number = _bare_number(value, bare_numbers, "a duration", _DURATION_FORMS)
    if number is not None:
        return number
    if (bare := _number_text(value)) is not None:
        raise ValueError(
            f"duration {value!r} has no unit (a bare number would mean {bare} seconds): write "
            f"the unit after the number, e.g. '{bare}m' for minutes or '{bare}h' for hours, "
            "or a clock as HH:MM:SS"
        )
    text = str(value)
    if (match := _AMOUNT_RE.match(text)) is not None:
        unit = match.group(2).lower()
        if unit not in _DURATION_UNITS:
            raise ValueError(
                f"cannot read duration {value!r}: {unit!r} is not a unit of time; use s, m "
                "(or min), h or d"
            )
        seconds = int(float(match.group(1)) * _DURATION_UNITS[unit])
    elif (match := _CLOCK_RE.match(text)) is not None:
        seconds = _clock_seconds(text, match.group(1), match.group(2).split(":"))
    else:
        raise ValueError(f"cannot read duration {value!r}: write {_DURATION_FORMS}")
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def _clock_seconds(text: str, days: str | None, parts: list[str]) -> int:
    """Seconds in a clock: HH:MM:SS, or D-HH:MM:SS / D-HH:MM / D-HH as Slurm writes them."""
    fields = [int(p) for p in parts]
    if (big := next((f for f in fields[1:] if f >= 60), None)) is not None:
        hours, minutes = divmod(big, 60)
        raise ValueError(
            f"cannot read duration {text!r}: a clock's minutes and seconds run from 00 to 59, "
            f"and {big} is more; write {big} minutes as '{big}m' or '{hours:02d}:{minutes:02d}:00'"
        )
    if days is None and len(fields) == 2:
        first, second = (f"{f:02d}" for f in fields)
        raise ValueError(
            f"duration {text!r} is ambiguous: Slurm reads a two-part clock as minutes:seconds, "
            f"people often mean hours:minutes; write all three parts, '{first}:{second}:00' "
            f"or '00:{first}:{second}', or use a unit such as '2h' or '30m'"
        )
    if len(fields) > 3:
        raise ValueError(f"cannot read duration {text!r}: write {_DURATION_FORMS}")
    if days is not None and fields[0] >= 24:
        raise ValueError(
            f"cannot read duration {text!r}: after the days the hours run from 00 to 23 "
            "(e.g. '1-12:00:00')"
        )
    hours, minutes, seconds = [*fields, 0, 0][:3]
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def _bare_number(value: object, allowed: bool, what: str, forms: str) -> int | None:
    """`value` if it is a bare integer that may stand (tre's own records), None for text;
    ValueError for true/false or anything else that is not text."""
    if isinstance(value, str):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = "empty" if value is None else str(value).lower()
        raise ValueError(f"{what} must be a number with a unit, not {shown}: write {forms}")
    if not allowed:
        return None  # the caller says which unit is missing
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive whole number, got {value!r}")
    return value


def _number_text(value: object) -> str | None:
    """The number in a unitless `value` (42, 1.5, '42'), or None if it has a unit."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # 4294967296, never 4.29497e+09
    if isinstance(value, float):
        return f"{value:g}"
    match = _AMOUNT_RE.match(str(value))
    return match.group(1) if match and not match.group(2) else None


def format_duration(seconds: int) -> str:
    """Slurm's walltime form: 5400 -> '01:30:00', 90000 -> '1-01:00:00'."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock
