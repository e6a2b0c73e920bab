"""The data catalog: ingesting sources into secured Parquet (admins), listing datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from policies.access import raise_if, role_refusals
from tre.errors import InputError, PermissionDenied
from tre.models import Dataset, Role
from tre.names import check_name
from tre.secured.ingest import ingest, read_descriptor
from tre.service.session import Session
from tre.store import repo


def ingest_dataset(
    session: Session,
    name: str,
    source: Path,
    *,
    descriptor: Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    rows_per_group: int = 1_000_000,
) -> Dataset:
    """Encrypt `source` into a new version of dataset `name` and register it (admin only)."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "ingesting datasets"),
        "you cannot ingest datasets",
    )
    try:
        check_name(name, "object", "dataset name")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    described = read_descriptor(descriptor) if descriptor is not None else None
    if described is not None and described.name not in (None, name):
        raise InputError(
            f"the descriptor {descriptor} describes dataset {described.name!r}, not {name!r}",
            fix="ingest under the descriptor's name, or use the right descriptor",
        )
    version = repo.next_dataset_version(session.conn, name)
    dataset = ingest(
        keys_root=session.home.keys,
        data_root=session.home.data,
        name=name,
        version=version,
        source=source,
        descriptor=described,
        ingested_by=session.actor,
        rows_per_group=rows_per_group,
        progress=progress,
    )
    with session.write() as conn:
        repo.put_dataset(conn, dataset)
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
            },
        )
    return dataset


def list_datasets(session: Session) -> list[Dataset]:
    """The catalog (names, versions, columns; never data). Any registered person may look."""
    if session.person() is None:
        raise PermissionDenied("you are not registered with this TRE")
    return repo.list_datasets(session.conn)


def show_dataset(session: Session, name: str, version: int | None = None) -> Dataset:
    if session.person() is None:
        raise PermissionDenied("you are not registered with this TRE")
    return repo.get_dataset(session.conn, name, version)
