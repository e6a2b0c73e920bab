"""Polars reads of secured fragments: the same values, checks and keys as pyarrow's,
with filters applied while reading."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from tre.keys.grants import GrantRevoked, KeyNotGranted, Revocations, peek
from tre.keys.kms import column_key_id, data_keys, footer_key_id
from tre.keys.masterkeys import KmsSettings
from tre.models import Dataset
from tre.secured.frames import read_frame, read_frames
from tre.secured.reader import ColumnNotGranted, Fragment, SecuredSource, fragments, read_fragment

Source = Callable[..., SecuredSource]


def test_polars_reads_the_same_values_as_pyarrow(care: Dataset, source_for: Source) -> None:
    secured = source_for(care, care.column_names)
    for fragment in fragments(secured, target_rows=100):
        expected = pl.from_arrow(read_fragment(secured, fragment, care.column_names))
        assert read_frame(secured, fragment, care.column_names).equals(expected)


def test_part_of_a_file_reads_exactly_its_row_groups(
    care: Dataset, source_for: Source, source: pa.Table
) -> None:
    secured = source_for(care, ["cost"])
    frame = read_frame(secured, Fragment(file=1, row_groups=(1, 2), rows=150), ["cost"])
    assert frame["cost"].to_list() == source["cost"].to_pylist()[350:500]


def test_filters_are_applied_while_reading(
    care: Dataset, source_for: Source, source: pa.Table
) -> None:
    secured = source_for(care, ["ward", "cost", "urgent"])
    where = (pl.col("ward") == "Huyton") & pl.col("urgent")
    frame = read_frames(secured, ["cost"], where)
    expected = pl.from_arrow(source).filter(where)["cost"]
    assert frame["cost"].to_list() == expected.to_list() and frame.columns == ["cost"]


def test_a_filter_on_an_ungranted_column_is_refused_before_polars(
    care: Dataset, source_for: Source, data_root: Path
) -> None:
    secured = source_for(care, ["cost", "age"])
    shutil.rmtree(data_root)  # nothing to read: the refusal comes first
    with pytest.raises(ColumnNotGranted) as info:
        read_frame(secured, fragments(secured)[0], ["cost"], pl.col("person_id") == "P0000007")
    assert info.value.not_granted == ["person_id"]


def test_a_revoked_grant_stops_the_next_polars_read(
    care: Dataset, source_for: Source, keys_root: Path
) -> None:
    secured = source_for(care, ["age"])
    parts = fragments(secured)
    read_frame(secured, parts[0], ["age"])  # its data keys are cached from here on
    Revocations(keys_root).revoke(peek(secured.token).id, "project suspended")
    with pytest.raises(GrantRevoked, match="project suspended"):
        read_frame(secured, parts[0], ["age"])


def test_a_narrow_grant_is_never_served_data_keys_a_wider_one_unwrapped(
    care: Dataset, source_for: Source, data_root: Path, local_kms: KmsSettings
) -> None:
    wide = source_for(care, ["person_id", "age"], job=1)
    narrow = source_for(care, ["age"], job=2)
    path = data_root / care.files[0].path
    secret = column_key_id("care", "person_id")
    assert len(data_keys(local_kms, wide.token, path, [secret])[secret]) == 32
    with pytest.raises(KeyNotGranted):
        data_keys(local_kms, narrow.token, path, [footer_key_id("care"), secret])


def test_polars_reads_make_one_kms_call_per_master_key(
    care: Dataset, source_for: Source, unwrap_calls: list[str]
) -> None:
    calls = unwrap_calls
    secured = source_for(care, ["age", "cost"])
    for _ in range(2):
        read_frames(secured, ["age"], pl.col("cost") > 100)
    assert sorted(calls) == sorted(
        ["care.footer", column_key_id("care", "age"), column_key_id("care", "cost")]
    )
