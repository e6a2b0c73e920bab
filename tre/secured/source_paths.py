"""Which files a source is, and opening them without following a link elsewhere.

A source path is chosen by an admin, but a folder of sources is often a drop folder
that others write to, so a link in it could point anywhere the admin can read
(`/etc/shadow`, another project's export). The rules:

- a single-file source that is a symlink is resolved, and its target must be a regular
  `.csv` or `.parquet` file (never a folder, device, FIFO or socket);
- in a folder source, a symlink must resolve to a regular file inside the folder; a
  link that leads outside it, to a folder, or nowhere, is refused (every one listed),
  as are two names for the same file (it would be read twice);
- every file is opened with `O_NOFOLLOW` at its resolved path and checked to be a
  regular file on the open descriptor, so a file swapped for a link (or a FIFO) after
  the checks is refused rather than read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from tre.errors import InputError

__all__ = ["SUFFIXES", "folder_files", "open_checked", "readable_file", "source_folder"]

SUFFIXES = (".csv", ".parquet")
_SHOWN = 20  # problems listed before "... and N more"


def source_folder(path: Path) -> Path | None:
    """`path` if it is a folder source, None if it is not a folder; InputError for a
    symlink to a folder (its links could not then be judged against the folder)."""
    if not path.is_dir():
        return None
    if path.is_symlink():
        raise InputError(
            f"the source {path} is a symlink to a folder ({path.resolve()})",
            fix=f"give the folder's own path: {path.resolve()}",
        )
    return path


def readable_file(path: Path) -> Path:
    """The path to read for a single-file source `path`: itself, or for a symlink its
    resolved target; InputError unless that is a non-empty regular .csv/.parquet file."""
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(
            f"cannot ingest {path.name}: only .csv and .parquet files can be ingested",
            fix="export the data as CSV (with a header row) or Parquet",
        )
    if not path.exists() and not path.is_symlink():
        raise InputError(f"the source file {path} does not exist", fix="check the path")
    real = path
    if path.is_symlink():
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise InputError(
                f"the source {path} is a symlink that leads nowhere",
                fix="give the path of the data file itself",
            ) from exc
    info = real.stat()
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"the source {path} is not a regular file ({_kind(info.st_mode)})",
            fix="give the path of a data file",
        )
    if real.suffix.lower() not in SUFFIXES:
        raise InputError(
            f"the source {path} is a symlink to {real}, which is not a .csv or .parquet file",
            fix="give the path of the data file itself, not a link to another file",
        )
    if info.st_size == 0:
        raise InputError(
            f"the source file {path} is empty",
            fix="check the export that made it finished; a CSV needs a header row and data",
        )
    return real


def folder_files(folder: Path) -> list[tuple[Path, Path]]:
    """(name, path to read) of every data file in `folder`, searched recursively in name
    order, hidden files and folders left out; InputError listing every link that does
    not stay inside the folder, every file tre cannot ingest, or if there are none."""
    root = folder.resolve(strict=True)
    found: list[tuple[Path, Path]] = []
    links, others = [], []
    for here, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files) + [d for d in dirs if (Path(here) / d).is_symlink()]:
            path = Path(here) / name
            if name.startswith("."):
                continue
            shown = str(path.relative_to(folder))
            real = path
            if path.is_symlink():
                problem, real = _link_problem(path, root)
                if problem:
                    links.append(f"{shown}: {problem}")
                    continue
            elif not path.is_file():
                others.append(f"{shown} ({_kind(path.lstat().st_mode)})")
                continue
            if path.suffix.lower() not in SUFFIXES:
                others.append(shown)
                continue
            found.append((path, real))
    if links:
        raise InputError(
            f"the folder {folder} holds symlinks that do not lead to a data file inside it",
            reasons=_listed(links),
            fix="copy the files they point to into the folder, or remove the links",
        )
    if others:
        raise InputError(
            f"the folder {folder} holds files that are not .csv or .parquet",
            reasons=_listed(others),
            fix="move them out of the folder (or ingest the data files one by one)",
        )
    twice = _same_files(found, folder)
    if twice:
        raise InputError(
            f"the folder {folder} holds the same file under two names (a link to it)",
            reasons=_listed(twice),
            fix="remove the links, so each file is read once",
        )
    if not found:
        raise InputError(
            f"the folder {folder} holds no .csv or .parquet files", fix="check the path"
        )
    return sorted(found)


def open_checked(path: Path) -> BinaryIO:
    """Open `path` for reading, refusing a symlink (`O_NOFOLLOW`) or anything but a
    regular file: the check is made on the open descriptor, so it cannot be raced."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(
            f"the source file {path} cannot be opened ({exc.strerror}; it may have been "
            "replaced by a symlink since it was checked)",
            fix="check the source folder is not being changed while ingesting",
        ) from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(
            f"the source file {path} is not a regular file ({_kind(mode)})",
            fix="give the path of a data file",
        )
    return os.fdopen(fd, "rb")


def _link_problem(path: Path, root: Path) -> tuple[str, Path]:
    """Why the link `path` may not be read ("" if it may), and where it leads."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return "a symlink that leads nowhere", path
    if not real.is_relative_to(root):
        return f"a symlink to {real}, outside the folder", real
    if real.suffix.lower() not in SUFFIXES:
        return f"a symlink to {real.relative_to(root)}, not a .csv or .parquet file", real
    mode = real.stat().st_mode
    if not stat.S_ISREG(mode):
        return f"a symlink to {_kind(mode)} (links are followed only to files)", real
    return "", real


def _same_files(found: list[tuple[Path, Path]], folder: Path) -> list[str]:
    seen: dict[tuple[int, int], Path] = {}
    twice = []
    for name, real in sorted(found):
        info = real.lstat()  # `real` is never a link: a link's target, or a file itself
        key = (info.st_dev, info.st_ino)
        if key in seen:
            twice.append(f"{seen[key].relative_to(folder)} and {name.relative_to(folder)}")
        else:
            seen[key] = name
    return twice


def _listed(problems: list[str]) -> list[str]:
    more = len(problems) - _SHOWN
    return problems[:_SHOWN] + ([f"... and {more} more"] if more > 0 else [])


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return kind
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"
