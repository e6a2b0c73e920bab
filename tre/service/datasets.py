"""The data catalog: ingesting sources into secured Parquet (admins), listing and verifying.

An ingest without a descriptor is two calls, so a person confirms what was inferred:
`infer_source` (types inferred, every column an attribute; nothing written), then
`ingest_dataset` with the descriptor it returned (or a corrected one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from policies.access import raise_if, role_refusals
from tre.errors import InputError, NotFound, PermissionDenied, PlatformError
from tre.models import Dataset, DatasetDescriptor, Role
from tre.names import check_name
from tre.secured.domains import ColumnDomains
from tre.secured.ingest import ingest, read_descriptor
from tre.secured.sources import infer_descriptor
from tre.secured.verify import Verification, verify_version
from tre.service.grants import kms_settings
from tre.service.session import Session
from tre.store import repo
from tre.store.domains import put_domains
from tre.store.versions import dataset_versions


def _admin(session: Session, action: str) -> None:
    raise_if(role_refusals(session.person(), Role.ADMIN, action), f"you cannot do {action}")


def infer_source(session: Session, source: Path) -> DatasetDescriptor:
    """What `source` would be ingested as without a descriptor (admins; writes nothing)."""
    _admin(session, "ingesting datasets")
    return infer_descriptor(Path(source))


def ingest_dataset(
    session: Session,
    name: str,
    source: Path,
    *,
    descriptor: Path | DatasetDescriptor | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    rows_per_group: int = 1_000_000,
    rows_per_file: int = 4_000_000,
    partition_by: Sequence[str] = (),
) -> Dataset:
    """Encrypt `source` (a file or a folder of them) into a new version of dataset `name`
    and register it (admin only)."""
    _admin(session, "ingesting datasets")
    try:
        check_name(name, "object", "dataset name")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if isinstance(descriptor, Path):
        described: DatasetDescriptor | None = read_descriptor(descriptor)
    else:
        described = descriptor
    if described is not None and described.name not in (None, name):
        raise InputError(
            f"the descriptor {descriptor} describes dataset {described.name!r}, not {name!r}",
            fix="ingest under the descriptor's name, or use the right descriptor",
        )
    version = repo.next_dataset_version(session.conn, name)
    domains = ColumnDomains()
    dataset = ingest(
        keys_root=session.home.keys,
        data_root=session.home.data,
        name=name,
        version=version,
        source=source,
        descriptor=described,
        ingested_by=session.actor,
        rows_per_group=rows_per_group,
        rows_per_file=rows_per_file,
        partition_by=list(partition_by),
        progress=progress,
        kms=kms_settings(session),
        domains=domains,
    )
    with session.write() as conn:
        repo.put_dataset(conn, dataset)
        put_domains(conn, name, version, domains.record())
        session.record(
            conn,
            "dataset.ingest",
            f"dataset:{name}:v{version}",
            Role.ADMIN,
            {
                "rows": dataset.row_count,
                "checksum": dataset.checksum,
                "files": len(dataset.files),
                "source": source.name,
                "sensitivity": {c.name: c.sensitivity.value for c in dataset.columns},
                "partition_by": list(partition_by),
                "unit": dataset.unit,
                "rows_per_group": rows_per_group,
            },
        )
    return dataset


def verify_dataset(session: Session, name: str, version: int | None = None) -> list[Verification]:
    """Re-check the files of `name` (one version, or all) against the catalog's sha256
    values (admins). Audited; PlatformError naming every bad file if any is."""
    _admin(session, "verifying datasets")
    if version is not None:
        versions = [repo.get_dataset(session.conn, name, version)]
    else:
        versions = dataset_versions(session.conn, name)
    if not versions:
        raise NotFound(
            f"there is no dataset {name!r} in the catalog",
            fix="check the name with 'tre dataset list'",
        )
    results = [verify_version(session.home.data, d) for d in versions]
    problems = [p for r in results for p in r.problems]
    with session.write() as conn:
        session.record(
            conn,
            "dataset.verify",
            f"dataset:{name}" + (f":v{version}" if version else ""),
            Role.ADMIN,
            {
                "versions": [r.version for r in results],
                "files": sum(r.checked for r in results),
                "ok": not problems,
                "bad_files": [f for r in results for f in r.bad_files],
            },
        )
    if problems:
        raise PlatformError(
            f"dataset {name!r} failed verification: {len(problems)} problem(s)",
            reasons=problems,
            fix="restore the named files from backup (tre never rewrites a data file; key "
            "material changes only when keys are rotated)",
        )
    return results


def list_datasets(session: Session) -> list[Dataset]:
    """The catalog (names, versions, columns; never data). Any registered person may look."""
    if session.person() is None:
        raise PermissionDenied("you are not registered with this TRE")
    return repo.list_datasets(session.conn)


def show_dataset(session: Session, name: str, version: int | None = None) -> Dataset:
    """One version of a dataset (the newest by default): columns, types, sensitivity."""
    if session.person() is None:
        raise PermissionDenied("you are not registered with this TRE")
    return repo.get_dataset(session.conn, name, version)
