"""Reading what untrusted code left on disk: regular files and folders only, by
descriptor (a link is refused, never followed; a FIFO never blocks), within limits.

Used wherever tre reads a folder researcher code could write: the service collecting a
sandboxed job's `out/` (tre/service/sandboxing.py), and the engine reading what the
python steps' own sandbox handed over (jobs/handover.py).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

from tre.errors import PlatformError

MAX_RESULT_BYTES = 4 << 30
MAX_RESULT_FILES = 10_000
MAX_SMALL_FILE = 1 << 20  # error.json, progress.json
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class UntrustedOutput(PlatformError):
    """What a sandboxed job left behind is not what a job may hand back."""


def is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def read_small(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a link where a file should be
        raise UntrustedOutput(f"the job left {path.name} as something other than a file") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SMALL_FILE:
            raise UntrustedOutput(f"the job left {path.name} as something other than a small file")
        return handle.read(MAX_SMALL_FILE)


def write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def copy_tree(source: Path, target: Path) -> None:
    """Copy regular files and folders only, by descriptor, within the limits."""
    target.mkdir(mode=0o700)
    files, total = 0, 0
    stack = [(source, target)]
    while stack:
        here, there = stack.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                if not _NAME.fullmatch(entry.name):
                    raise UntrustedOutput(f"the job's result holds a file named {entry.name!r}")
                if entry.is_symlink():
                    raise UntrustedOutput(f"the job's result holds a link ({entry.name})")
                if entry.is_dir(follow_symlinks=False):
                    (there / entry.name).mkdir(mode=0o700)
                    stack.append((Path(entry.path), there / entry.name))
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as handle:
                    info = os.fstat(handle.fileno())
                    if not stat.S_ISREG(info.st_mode):
                        raise UntrustedOutput(
                            f"the job's result holds a special file ({entry.name})"
                        )
                    files, total = files + 1, total + info.st_size
                    if files > MAX_RESULT_FILES or total > MAX_RESULT_BYTES:
                        raise UntrustedOutput(
                            f"the job's result is over {MAX_RESULT_FILES} files or "
                            f"{MAX_RESULT_BYTES >> 30} GiB"
                        )
                    copy = os.open(there / entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(copy, "wb") as kept:
                        shutil.copyfileobj(handle, kept, 1 << 20)
