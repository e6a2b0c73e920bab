"""Parse and print the units people write in specs: memory sizes and durations."""

from __future__ import annotations

import re

_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_CLOCK_RE = re.compile(r"^\s*(?:(\d+)-)?(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_memory(text: str | int) -> int:
    """Bytes in '4GiB', '512MB', '2G' or a plain integer; ValueError says the accepted forms."""
    if isinstance(text, int):
        if text <= 0:
            raise ValueError(f"memory must be positive, got {text}")
        return text
    match = _MEMORY_RE.match(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _MEMORY_UNITS:
        raise ValueError(
            f"cannot read memory size {text!r}: write a number and a unit, "
            "for example '4GiB', '512MiB' or '8GB'"
        )
    value = int(float(match.group(1)) * _MEMORY_UNITS[unit])
    if value <= 0:
        raise ValueError(f"memory must be positive, got {text!r}")
    return value


def format_memory(n_bytes: int) -> str:
    """The shortest exact binary form: 4294967296 -> '4GiB'."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n_bytes % size == 0:
            return f"{n_bytes // size}{unit}"
    return f"{n_bytes}B"


def parse_duration(text: str | int) -> int:
    """Seconds in '30m', '2h', '1d', '01:30:00', '2-00:00:00' (Slurm's form) or an integer."""
    if isinstance(text, int):
        if text <= 0:
            raise ValueError(f"duration must be positive, got {text}")
        return text
    if (match := _DURATION_RE.match(str(text))) is not None:
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        seconds = int(float(match.group(1)) * factor)
    elif (match := _CLOCK_RE.match(str(text))) is not None:
        days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
        if match.group(4) is None:  # "HH:MM" means hours and minutes
            secs = 0
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(
            f"cannot read duration {text!r}: write for example '30m', '2h', '1d' or '01:30:00'"
        )
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


def format_duration(seconds: int) -> str:
    """Slurm's walltime form: 5400 -> '01:30:00', 90000 -> '1-01:00:00'."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock
