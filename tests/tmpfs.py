"""A small real file system for the full-disk tests: a tmpfs mounted for one test.

Mounting needs root (CAP_SYS_ADMIN); without it the tests that need a full disk are
skipped (failed under TRE_REQUIRE_ALL=1, as `make test` sets). `fill` writes a file
until the file system refuses with ENOSPC, which is what a full disk does to tre.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BALLAST = "ballast.bin"


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` (e.g. "64m") at `path`, unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs for the full-disk tests: {mounted.stderr.strip()}"
        if os.environ.get("TRE_REQUIRE_ALL") == "1":
            pytest.fail(message + " (TRE_REQUIRE_ALL=1 turns this skip into a failure)")
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write `folder/ballast.bin` until the disk is full, then give back `leave` bytes."""
    ballast = folder / BALLAST
    chunk = b"\0" * (1 << 16)
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    if leave:
        os.truncate(ballast, max(0, ballast.stat().st_size - leave))
    return ballast


def free(folder: Path) -> None:
    """Give all the ballast back."""
    (folder / BALLAST).unlink(missing_ok=True)
