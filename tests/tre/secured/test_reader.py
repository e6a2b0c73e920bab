"""Reading secured data: granted columns only, checked before pyarrow, on real workers."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from tre.errors import PlatformError
from tre.keys.grants import (
    GrantExpired,
    GrantInvalid,
    GrantRevoked,
    KeyNotGranted,
    Revocations,
    peek,
)
from tre.keys.keystore import KeyStoreError
from tre.keys.kms import column_key_id
from tre.models import Dataset
from tre.secured.reader import (
    ColumnNotGranted,
    Fragment,
    SecuredSource,
    check_columns,
    fragments,
    read_fragment,
    read_table,
)

GRANTED = ("age", "ward", "cost", "seen")


@pytest.fixture
def secured(care: Dataset, source_for: Callable[..., SecuredSource]) -> SecuredSource:
    """care v1 as a job of a project granted four of its seven columns reads it."""
    return source_for(care, GRANTED)


def _plain(files: tuple[tuple[str, tuple[int, ...]], ...]) -> SecuredSource:
    return SecuredSource(
        data_root="/nowhere",
        keys_root="/nowhere",
        dataset="care",
        version=1,
        files=files,
        columns=(("age", "int64", "quasi_identifier"),),
        granted=("age",),
    )


def test_reading_granted_columns_returns_the_source_values(
    secured: SecuredSource, source: pa.Table, marker: str
) -> None:
    table = read_table(secured, ["ward", "age", "seen"])
    assert table.column_names == ["ward", "age", "seen"]
    assert table.equals(source.select(["ward", "age", "seen"]))
    assert table["ward"][7].as_py() == marker


def test_one_fragment_holds_exactly_its_row_groups(
    secured: SecuredSource, source: pa.Table
) -> None:
    fragment = Fragment(file=1, row_groups=(1, 2), rows=150)  # rows 350-499
    table = read_fragment(secured, fragment, ["cost"])
    assert table.num_rows == 150
    assert table["cost"].to_pylist() == source["cost"].to_pylist()[350:500]


def test_ungranted_and_unknown_columns_are_all_named_with_the_fix(
    secured: SecuredSource,
) -> None:
    with pytest.raises(ColumnNotGranted) as info:
        read_table(secured, ["age", "person_id", "urgent", "wardd"])
    error = info.value
    assert error.not_granted == ["person_id", "urgent"]
    assert error.unknown == ["wardd"]
    text = str(error)
    assert "this job may not read 3 column(s) of dataset 'care' v1" in text
    assert (
        "column 'person_id' is not approved for this project (approved: age, ward, cost, seen)"
    ) in text
    assert "column 'urgent' is not approved" in text
    assert (
        "column 'wardd' is not a column of care v1 "
        "(its columns: person_id, age, ward, cost, seen, urgent, team)"
    ) in text
    assert "ask the project's admin to add the column to the project's approval" in text
    assert "check the spelling" in text
    assert error.exit_code == 4


def test_columns_are_refused_before_pyarrow_is_reached(
    secured: SecuredSource, data_root: Path, keys_root: Path
) -> None:
    shutil.rmtree(data_root)
    shutil.rmtree(keys_root)
    fragment = fragments(secured)[0]
    with pytest.raises(ColumnNotGranted, match="person_id"):
        read_fragment(secured, fragment, ["person_id"])
    with pytest.raises(ColumnNotGranted, match="nhs_number"):
        read_fragment(secured, fragment, ["nhs_number"])
    check_columns(secured, ["age", "cost"])  # granted: fine without any file


def test_a_reader_needs_only_the_keys_of_the_columns_it_reads(
    secured: SecuredSource, keys_root: Path, source: pa.Table
) -> None:
    # With the person_id and age keys gone, other columns still read: the reader never
    # asked for keys beyond the footer and the columns it reads.
    for column in ("person_id", "age"):
        (keys_root / f"{column_key_id('care', column)}.v1.key").unlink()
    assert read_table(secured, ["cost", "ward"]).equals(source.select(["cost", "ward"]))
    with pytest.raises(KeyStoreError, match="which is not in the local key store"):
        read_table(secured, ["age"])


def test_a_widened_grant_list_is_refused_before_pyarrow_by_the_signed_grant(
    secured: SecuredSource, data_root: Path
) -> None:
    # A job that edits its own input to list more columns: the token still names only
    # the keys of the columns it was granted, and that is checked before any file opens.
    widened = dataclasses.replace(secured, granted=(*secured.granted, "person_id"))
    shutil.rmtree(data_root)
    with pytest.raises(KeyNotGranted) as info:
        read_fragment(widened, fragments(widened)[0], ["age", "person_id"])
    assert "column 'person_id' of dataset 'care'" in str(info.value)
    assert "column 'age'" not in str(info.value)


def test_a_revoked_grant_stops_the_next_read_with_the_reason(
    secured: SecuredSource, keys_root: Path
) -> None:
    parts = fragments(secured)
    read_fragment(secured, parts[0], ["age"])  # keys unwrapped and cached from here on
    grant = peek(secured.token)
    Revocations(keys_root).revoke(grant.id, "project 'test-project' was suspended by ada")
    with pytest.raises(GrantRevoked, match="was revoked: project 'test-project' was suspended"):
        read_fragment(secured, parts[1], ["age"])


def test_an_expired_or_missing_grant_reads_nothing(
    care: Dataset, source_for: Callable[..., SecuredSource]
) -> None:
    expired = source_for(care, GRANTED, not_after=time.time() - 60)
    with pytest.raises(GrantExpired, match="expired at"):
        read_table(expired, ["age"])
    tokenless = dataclasses.replace(expired, token="")
    with pytest.raises(GrantInvalid, match="no key grant was given"):
        read_table(tokenless, ["age"])


def test_the_token_is_never_shown(secured: SecuredSource) -> None:
    assert secured.token.startswith("tre-grant.1.")
    assert secured.token not in repr(secured)
    assert secured.token not in str(secured)


def test_a_missing_data_file_is_a_platform_error(
    secured: SecuredSource, data_root: Path, care: Dataset
) -> None:
    (data_root / care.files[2].path).unlink()
    with pytest.raises(PlatformError, match="is missing") as info:
        read_table(secured, ["age"])
    assert "restore the data root from backup" in str(info.value)


def test_rows_that_disagree_with_the_registry_are_refused(secured: SecuredSource) -> None:
    assert read_fragment(secured, Fragment(3, (0, 1, 2), 250), ["age"]).num_rows == 250
    with pytest.raises(PlatformError, match="hold 50 rows; the registry says 100"):
        read_fragment(secured, Fragment(3, (2,), 100), ["age"])


def test_fragments_group_consecutive_row_groups_within_a_file() -> None:
    source = _plain((("a.parquet", (100, 100, 50)), ("b.parquet", (100,)), ("c", (500, 10))))
    assert fragments(source, target_rows=200) == [
        Fragment(0, (0, 1), 200),
        Fragment(0, (2,), 50),
        Fragment(1, (0,), 100),
        Fragment(2, (0,), 500),
        Fragment(2, (1,), 10),  # a big group stands alone
    ]
    assert fragments(source, target_rows=10_000) == [
        Fragment(0, (0, 1, 2), 250),
        Fragment(1, (0,), 100),
        Fragment(2, (0, 1), 510),
    ]
    assert len(fragments(source, target_rows=1)) == 6


def test_fragments_of_the_ingested_dataset_cover_every_row_once(
    secured: SecuredSource, care: Dataset
) -> None:
    parts = fragments(secured, target_rows=200)
    assert sum(p.rows for p in parts) == care.row_count
    assert [(p.file, p.row_groups) for p in parts[:2]] == [(0, (0, 1)), (0, (2,))]


def test_a_source_and_its_refusals_survive_pickling(secured: SecuredSource) -> None:
    assert pickle.loads(pickle.dumps(secured)) == secured
    with pytest.raises(ColumnNotGranted) as info:
        check_columns(secured, ["person_id", "nope"])
    copy = pickle.loads(pickle.dumps(info.value))
    assert isinstance(copy, ColumnNotGranted)
    assert (copy.not_granted, copy.unknown) == (["person_id"], ["nope"])
    assert str(copy) == str(info.value)


@pytest.mark.slow
def test_workers_in_other_processes_decrypt_their_fragments(
    secured: SecuredSource, source: pa.Table
) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        parts = fragments(secured, target_rows=250)
        futures = [client.submit(read_fragment, secured, p, ["age", "ward"]) for p in parts]
        tables = client.gather(futures)
        refused = client.submit(read_fragment, secured, parts[0], ["person_id"])
        with pytest.raises(ColumnNotGranted) as info:
            refused.result()
    assert pa.concat_tables(tables).equals(source.select(["age", "ward"]))
    assert info.value.not_granted == ["person_id"]
