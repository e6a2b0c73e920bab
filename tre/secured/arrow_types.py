"""Arrow column types as `tre` stores them: flat types with a canonical name.

A dataset records each column's type as text ('int64', 'string', 'double', 'bool',
'date32[day]', 'timestamp[us, tz=UTC]', 'decimal128(10, 2)'). Only flat types are
stored: nested columns would need per-leaf encryption keys and make grants ambiguous.
Sources are normalised on the way in (large/view strings become 'string',
dictionary-encoded columns their value type) so one logical type has one name.
"""

from __future__ import annotations

import re

import pyarrow as pa

__all__ = ["SUPPORTED", "normalise", "parse_type", "type_name"]

#: Shown to people who declare a type tre does not know.
SUPPORTED = (
    "int8/16/32/64, uint8/16/32/64, float, double, bool, string, binary, date32, "
    "timestamp[s|ms|us|ns] (optionally 'timestamp[us, tz=UTC]'), time32[s|ms], "
    "time64[us|ns], decimal128(precision, scale)"
)

_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([A-Za-z0-9_+\-:/]+))?\]$")
_DECIMAL = re.compile(r"^decimal128\((\d{1,2}),\s*(-?\d{1,2})\)$")


def parse_type(text: str) -> pa.DataType:
    """The Arrow type named by `text`; ValueError naming the supported types if unknown."""
    text = text.strip()
    if match := _TIMESTAMP.fullmatch(text):
        return pa.timestamp(match[1], tz=match[2])
    if match := _DECIMAL.fullmatch(text):
        try:
            return pa.decimal128(int(match[1]), int(match[2]))
        except (ValueError, pa.ArrowException) as exc:
            raise ValueError(f"type {text!r} is not a valid decimal: {exc}") from exc
    try:
        parsed = pa.type_for_alias(text)
    except (ValueError, KeyError):
        parsed = None
    if parsed is None or normalise(parsed) != parsed:
        raise ValueError(f"type {text!r} is not one tre stores; use one of: {SUPPORTED}")
    return parsed


def normalise(dtype: pa.DataType) -> pa.DataType | None:
    """The type tre stores for a source column of type `dtype`; None if unsupported."""
    if pa.types.is_dictionary(dtype):
        return normalise(dtype.value_type)
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return pa.binary()
    if pa.types.is_date64(dtype):
        return pa.date32()  # a date64 holds whole days in ms; date32 is Parquet's own DATE
    flat = (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_binary(dtype)
        or pa.types.is_date32(dtype)
        or pa.types.is_timestamp(dtype)
        or pa.types.is_time(dtype)
        or pa.types.is_decimal128(dtype)
    )
    return dtype if flat else None


def type_name(dtype: pa.DataType) -> str:
    """The canonical text of a stored type (what `parse_type` reads back)."""
    return str(dtype)
