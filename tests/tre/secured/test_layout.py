"""Ingest layouts: a folder of sources, partitions on non-sensitive columns only,
statistics for attribute columns only, schemas inferred for a person to confirm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tre.errors import InputError
from tre.keys.kms import decryption_properties
from tre.keys.masterkeys import KmsSettings
from tre.models import Dataset, DatasetDescriptor, Sensitivity
from tre.secured.ingest import ingest
from tre.secured.parts import partition_folder, split_partitions
from tre.secured.reader import SecuredSource, read_table
from tre.secured.sources import infer_descriptor

Grant = Callable[..., str]


def _ingest(
    keys_root: Path,
    data_root: Path,
    source: Path,
    descriptor: DatasetDescriptor | None,
    **kw: object,
) -> Dataset:
    return ingest(
        keys_root=keys_root,
        data_root=data_root,
        name="care",
        version=1,
        source=source,
        descriptor=descriptor,
        ingested_by="admin",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def folder(tmp_path: Path, source: pa.Table) -> Path:
    """The source split in three: two CSVs and a Parquet file, one in a sub-folder."""
    root = tmp_path / "exports"
    (root / "2025").mkdir(parents=True)
    pcsv.write_csv(source.slice(0, 400), root / "a.csv")
    pcsv.write_csv(source.slice(400, 300), root / "b.csv")
    pq.write_table(source.slice(700), root / "2025" / "c.parquet")
    return root


def test_a_folder_of_csv_and_parquet_files_reads_as_one_table(
    keys_root: Path,
    data_root: Path,
    folder: Path,
    care_descriptor: DatasetDescriptor,
    source: pa.Table,
    source_for: Callable[..., SecuredSource],
) -> None:
    progress: list[tuple[int, int | None]] = []
    dataset = _ingest(
        keys_root,
        data_root,
        folder,
        care_descriptor,
        rows_per_group=300,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert dataset.row_count == 1000
    assert [f.row_groups for f in dataset.files] == [[300, 300, 300, 100]]
    assert progress[-1] == (1000, None)  # CSV parts cannot tell their size up front
    secured = source_for(dataset, dataset.column_names)
    # Files in name order: 2025/c.parquet, a.csv, b.csv
    expected = pa.concat_tables([source.slice(700), source.slice(0, 400), source.slice(400, 300)])
    assert read_table(secured, dataset.column_names).equals(expected)


def test_a_folder_file_with_other_columns_or_types_is_named(
    keys_root: Path, data_root: Path, folder: Path, source: pa.Table
) -> None:
    pcsv.write_csv(source.drop_columns(["team"]), folder / "d.csv")
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, folder, None)
    assert "the columns of d.csv cannot be ingested" in str(info.value)
    assert "column 'team' is in the descriptor but missing from the source" in str(info.value)
    (folder / "d.csv").unlink()
    (folder / "e.csv").write_text(
        "person_id,age,ward,cost,seen,urgent,team\nP1,old,Halton,1.0,2024-01-01,true,x\n"
    )
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, folder, None)
    assert "the CSV file e.csv has a value that does not fit its column" in str(info.value)
    assert "column 'age' is declared int64" in str(info.value)


def test_a_folder_with_other_files_or_none_is_refused(
    keys_root: Path, data_root: Path, folder: Path, tmp_path: Path
) -> None:
    (folder / "notes.txt").write_text("ignore me")
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, folder, None)
    assert "holds files that are not .csv or .parquet" in str(info.value)
    assert "notes.txt" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"holds no \.csv or \.parquet files"):
        _ingest(keys_root, data_root, tmp_path / "empty", None)


def test_inferred_schemas_are_shown_before_anything_is_written(
    folder: Path, data_root: Path
) -> None:
    inferred = infer_descriptor(folder)
    assert [(c.name, c.type, c.sensitivity) for c in inferred.columns] == [
        ("person_id", "string", Sensitivity.ATTRIBUTE),
        ("age", "int64", Sensitivity.ATTRIBUTE),
        ("ward", "string", Sensitivity.ATTRIBUTE),
        ("cost", "double", Sensitivity.ATTRIBUTE),
        ("seen", "date32[day]", Sensitivity.ATTRIBUTE),
        ("urgent", "bool", Sensitivity.ATTRIBUTE),
        ("team", "string", Sensitivity.ATTRIBUTE),
    ]
    assert list(data_root.iterdir()) == []


def test_partitions_are_folders_of_an_attribute_column_and_read_back_whole(
    keys_root: Path,
    data_root: Path,
    csv_source: Path,
    care_descriptor: DatasetDescriptor,
    source: pa.Table,
    source_for: Callable[..., SecuredSource],
) -> None:
    dataset = _ingest(
        keys_root,
        data_root,
        csv_source,
        care_descriptor,
        partition_by=["team"],
        rows_per_group=200,
        rows_per_file=400,
    )
    assert [(f.path, f.row_groups) for f in dataset.files] == [
        ("care/v1/team=Reablement-Team-North/part-00000.parquet", [200, 200]),
        ("care/v1/team=Reablement-Team-North/part-00001.parquet", [100]),
        ("care/v1/team=Reablement-Team-South/part-00000.parquet", [200, 200]),
        ("care/v1/team=Reablement-Team-South/part-00001.parquet", [100]),
    ]
    secured = source_for(dataset, dataset.column_names)
    table = read_table(secured, dataset.column_names)  # the partition column is in the files
    assert table.sort_by("person_id").equals(source.sort_by("person_id"))
    north = read_table(SecuredSource(**{**secured.__dict__, "files": secured.files[:2]}), ["team"])
    assert set(north["team"].to_pylist()) == {"Reablement-Team-North"}


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["ward"], "'ward' is quasi_identifier: partition values become plaintext folder names"),
        (["person_id"], "'person_id' is identifier"),
        (["cost"], "'cost' is double; partition on a whole-number, text, boolean or date"),
        (["nope"], "'nope' is not a column"),
        (["team", "team"], "listed more than once"),
    ],
)
def test_sensitive_or_unsuitable_partition_columns_are_refused_before_writing(
    keys_root: Path,
    data_root: Path,
    csv_source: Path,
    care_descriptor: DatasetDescriptor,
    columns: list[str],
    expected: str,
) -> None:
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, csv_source, care_descriptor, partition_by=columns)
    assert expected in str(info.value)
    assert list(data_root.iterdir()) == []


def test_a_high_cardinality_partition_column_is_refused(
    keys_root: Path, data_root: Path, tmp_path: Path
) -> None:
    path = tmp_path / "wide.csv"
    pcsv.write_csv(pa.table({"n": list(range(1500)), "x": [1] * 1500}), path)
    with pytest.raises(InputError, match="more than 1000 partitions"):
        _ingest(keys_root, data_root, path, None, partition_by=["n"])
    assert list(data_root.iterdir()) == []


def test_partition_folder_names_cannot_escape_or_hide() -> None:
    assert partition_folder(["area"], ["St Helens"]) == "area=St%20Helens"
    assert partition_folder(["a"], [".."]) == "a=%2E%2E"
    assert partition_folder(["a"], ["x/../../etc"]) == "a=x%2F%2E%2E%2F%2E%2E%2Fetc"
    assert partition_folder(["a", "b"], [None, True]) == "a=__HIVE_DEFAULT_PARTITION__/b=true"
    table = pa.table({"a": ["x", None, "x", "y"], "v": [1, 2, 3, 4]})
    groups = {values: part["v"].to_pylist() for values, part in split_partitions(table, ["a"])}
    assert groups == {("x",): [1, 3], (None,): [2], ("y",): [4]}


def test_statistics_are_kept_for_attribute_columns_only(
    keys_root: Path, data_root: Path, care: Dataset, grant_token: Grant
) -> None:
    path = data_root / care.files[0].path
    token = grant_token("care", care.column_names)
    props = decryption_properties(KmsSettings.local(keys_root), token, path)
    metadata = pq.ParquetFile(path, decryption_properties=props).metadata
    group = metadata.row_group(0)
    kept = {
        group.column(i).path_in_schema: group.column(i).is_stats_set
        for i in range(group.num_columns)
    }
    assert kept == {
        "person_id": False,  # identifier: its minimum would be a real person's id
        "age": False,
        "ward": False,
        "cost": True,
        "seen": True,
        "urgent": True,
        "team": True,
    }
