"""Re-check a dataset version on disk against the catalog, without decrypting anything.

For every file the catalog lists: it exists, it is a regular private file, its sha256
is the one recorded at ingest, and its key material (beside it) is there and readable.
Files in the version's folder that the catalog does not list are reported too. Every
problem names the file, relative to the data root, so it can be restored from backup.
"""

from __future__ import annotations

import grp
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tre.errors import TreError
from tre.keys.kms import KEY_MATERIAL_PREFIX, key_material_path, key_material_versions
from tre.models import Dataset
from tre.secured.parts import file_sha256

__all__ = ["Verification", "verify_version"]

JOB_GROUP = "tre-job"  # the sandbox's user and group (slurm.sandbox.JOB_USER)


@dataclass
class Verification:
    """What `verify_version` found: the files checked and every problem, by file."""

    dataset: str
    version: int
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file matched the catalog."""
        return not self.problems

    def _add(self, rel: str, problem: str) -> None:
        self.problems.append(f"{rel}: {problem}")
        if rel not in self.bad_files:
            self.bad_files.append(rel)


def verify_version(data_root: Path, dataset: Dataset) -> Verification:
    """Check every file of `dataset` (one version) under `data_root`."""
    result = Verification(dataset.name, dataset.version)
    root = Path(data_root)
    for entry in dataset.files:
        rel = PurePosixPath(entry.path)
        if rel.is_absolute() or ".." in rel.parts:
            result._add(entry.path, "the catalog gives a path outside the data root")
            continue
        _check_file(root, entry.path, entry.sha256, result)
        result.checked += 1
    listed = {entry.path for entry in dataset.files}
    folder = root / dataset.name / f"v{dataset.version}"
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel_text = str(path.relative_to(root))
            if path.name.startswith(KEY_MATERIAL_PREFIX):
                data = path.parent / path.name[len(KEY_MATERIAL_PREFIX) :].removesuffix(".json")
                if str(data.relative_to(root)) not in listed:
                    result._add(rel_text, "key material of a file the catalog does not list")
            elif rel_text not in listed:
                result._add(rel_text, "a file the catalog does not list (added after ingest?)")
    return result


def _job_gid() -> int | None:
    try:
        return grp.getgrnam(JOB_GROUP).gr_gid
    except KeyError:
        return None


def _check_file(root: Path, rel: str, expected: str, result: Verification) -> None:
    path = root / rel
    try:
        info = path.lstat()
    except FileNotFoundError:
        result._add(rel, "missing")
        return
    if not stat.S_ISREG(info.st_mode):
        result._add(rel, "not a regular file")
        return
    mode = stat.S_IMODE(info.st_mode)
    # The job user's group may read a sandboxed home's ciphertext (tre.service.sandboxing);
    # no other group may, and nobody else may do anything with it.
    group_ok = mode & 0o070 in (0, 0o040) and info.st_gid in (0, _job_gid())
    if mode & 0o007 or (mode & 0o070 and not group_ok):
        result._add(rel, f"mode {mode:04o} lets other users read it")
    try:
        actual = file_sha256(path)
    except OSError as exc:
        result._add(rel, f"cannot be read: {exc.strerror}")
        return
    if actual != expected:
        result._add(
            rel,
            f"sha256 is {actual[:16]}…, the catalog says {expected[:16]}… "
            "(the file was changed or damaged)",
        )
    material = key_material_path(path)
    try:
        if not key_material_versions(path):
            result._add(str(Path(rel).parent / material.name), "key material names no keys")
    except TreError as exc:
        result._add(str(Path(rel).parent / material.name), exc.message)
