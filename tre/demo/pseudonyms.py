"""Pseudonymous keys: "R" + 10 hex digits, unique, computable from a row's position.

A key is a keyed bijection of the row's global index on 40 bits, so keys are unique
without a lookup table, any chunk can compute the key of any resident (that is how
fire incidents and early-help referrals link to residents), and the key reveals
neither the row's position nor the seed without the secret stream key.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["Keyring", "key_strings", "keyring"]

_BITS = 40  # 10 hex digits
_MASK = np.uint64((1 << _BITS) - 1)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Nibble shifts from the most significant hex digit to the least.
_SHIFTS = np.arange(_BITS - 4, -1, -4, dtype=np.uint64)

Keyring = tuple[np.uint64, np.uint64, np.uint64, np.uint64]


def keyring(seed: int, stream: int) -> Keyring:
    """Secret constants of one key stream (one per dataset), drawn from the seed."""
    state = np.random.SeedSequence(seed, spawn_key=(0xC0FFEE, stream)).generate_state(
        4, dtype=np.uint64
    )
    xor_in, mul_a, mul_b, add = (np.uint64(int(v) & int(_MASK)) for v in state)
    # Multiplying by an odd number is a bijection modulo 2**40; an even one is not.
    return xor_in, mul_a | np.uint64(1), mul_b | np.uint64(1), add


def _scramble(index: npt.NDArray[np.uint64], keys: Keyring) -> npt.NDArray[np.uint64]:
    """A bijection of [0, 2**40): every step (xor, odd multiply, xorshift, add) inverts."""
    xor_in, mul_a, mul_b, add = keys
    x = (index ^ xor_in) & _MASK
    x = (x * mul_a) & _MASK  # uint64 arrays wrap silently, which is the modulus we want
    x ^= x >> np.uint64(19)
    x = (x * mul_b) & _MASK
    x ^= x >> np.uint64(23)
    return (x + add) & _MASK


def key_strings(
    prefix: str,
    index: npt.NDArray[np.int64],
    keys: Keyring,
    valid: npt.NDArray[np.bool_] | None = None,
) -> pa.StringArray:
    """Arrow strings `prefix` + 10 hex digits for the global row `index`es; null where not `valid`.

    Built straight into Arrow buffers: 10 million keys take well under a second.
    """
    n = len(index)
    if valid is not None:
        index = index[valid]
    codes = _scramble(index.astype(np.uint64), keys)
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    width = len(head) + len(_SHIFTS)
    chars = np.empty((len(codes), width), dtype=np.uint8)
    chars[:, : len(head)] = head
    nibbles = ((codes[:, None] >> _SHIFTS) & np.uint64(15)).astype(np.uint8)
    chars[:, len(head) :] = _HEX[nibbles]
    lengths = np.full(n, width, dtype=np.int32)
    bitmap = None
    null_count = 0
    if valid is not None:
        lengths[~valid] = 0
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int(n - np.count_nonzero(valid))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(),
        n,
        [bitmap, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1))],
        null_count=null_count,
    )
