"""Fixtures for the secured data layer: a private key store and data root in tmp_path,
a small source table with one distinctive value, a dataset ingested from it, grants to
read it, and a SoftHSM token of the test's own.

Test modules take everything as fixtures rather than importing from this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from tests.tre.secured.softhsm import start_token
from tre.keys import grants, keysystems, kms
from tre.keys.grants import make_grant, sign_grant
from tre.keys.keysystems import open_master_keys
from tre.keys.masterkeys import KmsSettings, MasterKeys
from tre.models import ColumnInfo, Dataset, DatasetDescriptor, Sensitivity
from tre.secured.ingest import ingest
from tre.secured.reader import SecuredSource

MARKER = "Knowsley-unique-marker"
ROWS = 1000


def _forget() -> None:
    kms.clear_caches()
    grants.forget_verified()
    keysystems.forget_opened()


@pytest.fixture(autouse=True)
def _fresh_kms_caches() -> Iterator[None]:
    # Each test starts with no cached KMS clients, KEKs, decryption properties,
    # verified grants or open key stores.
    _forget()
    yield
    _forget()


@pytest.fixture
def keys_root(tmp_path: Path) -> Path:
    """TRE_HOME/keys, private as `Home.create` makes it."""
    keys = tmp_path / "home" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    return keys


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """TRE_HOME/data."""
    data = tmp_path / "home" / "data"
    data.mkdir(parents=True, mode=0o700, exist_ok=True)
    return data


@pytest.fixture
def marker() -> str:
    """A value that appears once in the source and must never appear in secured bytes."""
    return MARKER


@pytest.fixture
def source() -> pa.Table:
    """The source table as the data owner exported it."""
    return _source_table()


def _source_table(rows: int = ROWS) -> pa.Table:
    """A small social-care-like table; row 7's ward is the distinctive MARKER."""
    wards = ["Halton", "Prescot", "Huyton", "Kirkby"]
    return pa.table(
        {
            "person_id": [f"P{i:07d}" for i in range(rows)],
            "age": [20 + i % 60 for i in range(rows)],
            "ward": [MARKER if i == 7 else wards[i % 4] for i in range(rows)],
            "cost": [round(i * 1.25, 2) for i in range(rows)],
            "seen": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 365) for i in range(rows)],
            "urgent": [i % 3 == 0 for i in range(rows)],
            "team": [
                "Reablement-Team-North" if i % 2 else "Reablement-Team-South" for i in range(rows)
            ],
        }
    )


@pytest.fixture
def care_descriptor() -> DatasetDescriptor:
    """The declared columns of `source_table`, one of each sensitivity class."""
    return DatasetDescriptor(
        name="care",
        description="Synthetic adult social care contacts",
        columns=[
            ColumnInfo(name="person_id", type="string", sensitivity=Sensitivity.IDENTIFIER),
            ColumnInfo(name="age", type="int64", sensitivity=Sensitivity.QUASI_IDENTIFIER),
            ColumnInfo(name="ward", type="string", sensitivity=Sensitivity.QUASI_IDENTIFIER),
            ColumnInfo(name="cost", type="double", description="Cost in pounds"),
            ColumnInfo(name="seen", type="date32"),
            ColumnInfo(name="urgent", type="bool"),
            ColumnInfo(name="team", type="string"),
        ],
    )


@pytest.fixture
def csv_source(tmp_path: Path) -> Path:
    path = tmp_path / "care.csv"
    pcsv.write_csv(_source_table(), path)
    return path


@pytest.fixture
def care(
    keys_root: Path, data_root: Path, csv_source: Path, care_descriptor: DatasetDescriptor
) -> Dataset:
    """The source ingested as care v1: 4 files of 250 rows, row groups of 100, 100, 50."""
    return ingest(
        keys_root=keys_root,
        data_root=data_root,
        name="care",
        version=1,
        source=csv_source,
        descriptor=care_descriptor,
        ingested_by="admin",
        rows_per_group=100,
        rows_per_file=250,
    )


@pytest.fixture
def local_kms(keys_root: Path) -> KmsSettings:
    """The local key store's settings."""
    return KmsSettings.local(keys_root)


Grant = Callable[..., str]


@pytest.fixture
def grant_token(local_kms: KmsSettings) -> Grant:
    """Sign a grant for `columns` of a dataset (as the service does for a job)."""

    def make(
        dataset: str,
        columns: Sequence[str],
        *,
        lifetime: float = 3600,
        project: str = "test-project",
        job: int = 1,
        settings: KmsSettings | None = None,
        not_after: float | None = None,
    ) -> str:
        grant = make_grant(
            holder=f"job {job}",
            keys=kms.keys_for(dataset, columns),
            lifetime=lifetime,
            project=project,
            job=job,
            not_after=not_after,
        )
        return sign_grant(grant, open_master_keys(settings or local_kms))

    return make


@pytest.fixture
def source_for(
    data_root: Path, keys_root: Path, grant_token: Grant
) -> Callable[..., SecuredSource]:
    """A SecuredSource of a dataset for a job granted `columns` (with a matching token)."""

    def make(dataset: Dataset, columns: Sequence[str], **grant_options: object) -> SecuredSource:
        return SecuredSource.from_dataset(
            data_root=data_root,
            keys_root=keys_root,
            dataset=dataset,
            granted=columns,
            token=grant_token(dataset.name, columns, **grant_options),
        )

    return make


@pytest.fixture
def softhsm(tmp_path: Path, keys_root: Path) -> KmsSettings:
    """KmsSettings using a SoftHSM token of this test's own."""
    token = start_token(tmp_path / "softhsm")
    return KmsSettings(
        kind="pkcs11",
        keys_root=str(keys_root),
        pkcs11_module=token.module,
        pkcs11_token=token.label,
        pkcs11_pin_file=str(token.pin_file),
    )


@pytest.fixture
def unwrap_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The master key id of every unwrap (KMS call) made in this process from now on."""
    calls: list[str] = []
    unwrap = MasterKeys.unwrap

    def counting(self: MasterKeys, key_id: str, wrapped: str) -> bytes:
        calls.append(key_id)
        return unwrap(self, key_id, wrapped)

    monkeypatch.setattr(MasterKeys, "unwrap", counting)
    return calls
