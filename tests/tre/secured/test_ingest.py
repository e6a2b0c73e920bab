"""Ingest: sources become encrypted, checksummed dataset versions, or nothing at all."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tre.errors import InputError, PlatformError
from tre.keys.grants import make_grant, sign_grant
from tre.keys.keysystems import open_master_keys
from tre.keys.kms import decryption_properties, key_material_path
from tre.keys.masterkeys import KmsSettings
from tre.models import Dataset, DatasetDescriptor, Sensitivity
from tre.secured.ingest import ingest, read_descriptor
from tre.secured.source_paths import open_checked


def _ingest(
    keys_root: Path,
    data_root: Path,
    source: Path,
    descriptor: DatasetDescriptor | None,
    *,
    name: str = "care",
    version: int = 1,
    **options: Any,
) -> Dataset:
    return ingest(
        keys_root=keys_root,
        data_root=data_root,
        name=name,
        version=version,
        source=source,
        descriptor=descriptor,
        ingested_by="admin",
        **options,
    )


def _open_with_all_keys(keys_root: Path, path: Path) -> pq.ParquetFile:
    """Open a secured file with a grant for every key in the store (an admin's view)."""
    settings = KmsSettings.local(keys_root)
    keys = open_master_keys(settings)
    token = sign_grant(make_grant(holder="test", keys=keys.key_ids(), lifetime=60), keys)
    props = decryption_properties(settings, token, path)
    return pq.ParquetFile(path, decryption_properties=props)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(data_root: Path) -> list[str]:
    return sorted(str(p.relative_to(data_root)) for p in data_root.rglob("*"))


# --- what a successful ingest produces --------------------------------------------


def test_csv_with_descriptor_becomes_files_and_row_groups_of_the_asked_sizes(
    keys_root: Path, data_root: Path, care: Dataset, source: pa.Table
) -> None:
    assert care.row_count == source.num_rows == 1000
    assert [f.path for f in care.files] == [f"care/v1/part-{i:05d}.parquet" for i in range(4)]
    assert [f.rows for f in care.files] == [250, 250, 250, 250]
    assert all(f.row_groups == [100, 100, 50] for f in care.files)
    for entry in care.files:  # the registry describes the files as they really are
        metadata = _open_with_all_keys(keys_root, data_root / entry.path).metadata
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        assert sizes == entry.row_groups


def test_columns_carry_declared_types_sensitivity_and_descriptions(care: Dataset) -> None:
    assert [(c.name, c.type, c.sensitivity) for c in care.columns] == [
        ("person_id", "string", Sensitivity.IDENTIFIER),
        ("age", "int64", Sensitivity.QUASI_IDENTIFIER),
        ("ward", "string", Sensitivity.QUASI_IDENTIFIER),
        ("cost", "double", Sensitivity.ATTRIBUTE),
        ("seen", "date32[day]", Sensitivity.ATTRIBUTE),
        ("urgent", "bool", Sensitivity.ATTRIBUTE),
        ("team", "string", Sensitivity.ATTRIBUTE),
    ]
    assert care.column("cost").description == "Cost in pounds"  # type: ignore[union-attr]
    assert care.description == "Synthetic adult social care contacts"
    assert care.ingested_by == "admin"


def test_checksums_match_the_bytes_on_disk(data_root: Path, care: Dataset) -> None:
    for entry in care.files:
        assert entry.sha256 == hashlib.sha256((data_root / entry.path).read_bytes()).hexdigest()
    joined = "".join(f.sha256 for f in care.files).encode()
    assert care.checksum == hashlib.sha256(joined).hexdigest()


def test_files_are_private(data_root: Path, care: Dataset) -> None:
    assert _mode(data_root / "care") == 0o700
    assert _mode(data_root / "care" / "v1") == 0o700
    assert {_mode(data_root / f.path) for f in care.files} == {0o600}
    materials = [key_material_path(data_root / f.path) for f in care.files]
    assert {_mode(m) for m in materials} == {0o600}
    assert _leftovers(data_root) == sorted(
        ["care", "care/v1"]
        + [f.path for f in care.files]
        + [str(m.relative_to(data_root)) for m in materials]
    )


def test_secured_files_reveal_nothing_without_keys(
    data_root: Path, care: Dataset, marker: str
) -> None:
    path = data_root / care.files[0].path
    with pytest.raises(OSError, match="encrypted"):
        pq.ParquetFile(path)  # no schema, no statistics, no row counts
    with pytest.raises(OSError, match="encrypted"):
        pq.read_metadata(path)
    everything = b"".join((data_root / f.path).read_bytes() for f in care.files)
    assert marker.encode() not in everything  # the source's marker is in file 0
    # One value of each sensitivity class, a column name, and Arrow's schema metadata.
    for plaintext in (b"P0000007", b"Halton", b"Reablement-Team", b"person_id", b"ARROW:schema"):
        assert plaintext not in everything


def test_parquet_source_without_descriptor_infers_types_as_attributes(
    keys_root: Path, data_root: Path, tmp_path: Path, source: pa.Table
) -> None:
    path = tmp_path / "care.parquet"
    pl.from_arrow(source).write_parquet(path)  # polars writes large/view string types
    progress: list[tuple[int, int | None]] = []
    dataset = _ingest(
        keys_root,
        data_root,
        path,
        None,
        rows_per_group=300,
        rows_per_file=1000,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert [(c.name, c.type) for c in dataset.columns] == [
        ("person_id", "string"),
        ("age", "int64"),
        ("ward", "string"),
        ("cost", "double"),
        ("seen", "date32[day]"),
        ("urgent", "bool"),
        ("team", "string"),
    ]
    assert {c.sensitivity for c in dataset.columns} == {Sensitivity.ATTRIBUTE}
    assert [(f.rows, f.row_groups) for f in dataset.files] == [(1000, [300, 300, 300, 100])]
    assert progress[-1] == (1000, 1000)
    table = _open_with_all_keys(keys_root, data_root / dataset.files[0].path).read()
    assert table.equals(source)


def test_csv_without_descriptor_reports_progress_without_a_total(
    keys_root: Path, data_root: Path, csv_source: Path
) -> None:
    progress: list[tuple[int, int | None]] = []
    dataset = _ingest(
        keys_root,
        data_root,
        csv_source,
        None,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert progress[-1] == (1000, None)
    assert dataset.column("seen").type == "date32[day]"  # type: ignore[union-attr]


def test_parquet_source_is_converted_to_declared_types(
    keys_root: Path,
    data_root: Path,
    tmp_path: Path,
    source: pa.Table,
    care_descriptor: DatasetDescriptor,
) -> None:
    path = tmp_path / "care.parquet"
    pq.write_table(source.set_column(1, "age", source["age"].cast(pa.int32())), path)
    dataset = _ingest(keys_root, data_root, path, care_descriptor)
    assert dataset.column("age").type == "int64"  # type: ignore[union-attr]
    table = _open_with_all_keys(keys_root, data_root / dataset.files[0].path).read()
    assert table.schema.field("age").type == pa.int64()


# --- refusals ------------------------------------------------------------------------


def test_descriptor_mismatch_lists_every_missing_and_unexpected_column(
    keys_root: Path,
    data_root: Path,
    tmp_path: Path,
    source: pa.Table,
    care_descriptor: DatasetDescriptor,
) -> None:
    path = tmp_path / "care.csv"
    pcsv.write_csv(
        source.drop_columns(["age", "cost"]).append_column(
            "postcode", pa.array(["L36 9UA"] * source.num_rows)
        ),
        path,
    )
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, path, care_descriptor)
    text = str(info.value)
    assert "'age' is in the descriptor but missing from the source" in text
    assert "'cost' is in the descriptor but missing from the source" in text
    assert "'postcode' is in the source but not in the descriptor" in text
    assert "make the source's header and the descriptor list the same columns" in text
    assert _leftovers(data_root) == []


def test_csv_value_that_does_not_cast_names_column_type_and_row_never_the_value(
    keys_root: Path,
    data_root: Path,
    tmp_path: Path,
    care_descriptor: DatasetDescriptor,
) -> None:
    path = tmp_path / "care.csv"
    path.write_text(
        "person_id,age,ward,cost,seen,urgent,team\n"
        "P1,34,Halton,1.5,2024-01-01,true,North\n"
        "P2,thirty,Halton,2.5,2024-01-02,false,South\n"
    )
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, path, care_descriptor)
    text = str(info.value)
    assert "care.csv" in text
    assert "column 'age' is declared int64, but its value in data row 2 is not one" in text
    assert "thirty" not in text and "P2" not in text  # pyarrow's message quotes the value
    assert _leftovers(data_root) == []


def test_parquet_column_of_an_unconvertible_type_is_refused_before_writing(
    keys_root: Path,
    data_root: Path,
    tmp_path: Path,
    source: pa.Table,
    care_descriptor: DatasetDescriptor,
) -> None:
    path = tmp_path / "care.parquet"
    pq.write_table(source, path)
    care_descriptor.columns[4].type = "bool"  # 'seen' holds dates
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, path, care_descriptor)
    assert (
        "column 'seen' is declared bool but the source has date32[day], which cannot be "
        "converted to it"
    ) in str(info.value)
    assert _leftovers(data_root) == []


def test_a_bad_value_found_mid_ingest_leaves_no_version_behind(
    keys_root: Path,
    data_root: Path,
    tmp_path: Path,
    care_descriptor: DatasetDescriptor,
) -> None:
    rows = 300_000  # more than one source batch, so parts are written before the bad row
    ages = pa.array([str(i % 90) for i in range(rows - 1)] + ["unknown"])
    table = pa.table(
        {
            "person_id": pa.array(["P"] * rows),
            "age": ages,
            "ward": pa.array(["Halton"] * rows),
            "cost": pa.array([1.0] * rows),
            "seen": pa.array([0] * rows, pa.int32()).cast(pa.date32()),
            "urgent": pa.array([True] * rows),
            "team": pa.array(["North"] * rows),
        }
    )
    path = tmp_path / "care.parquet"
    pq.write_table(table, path)
    written: list[int] = []
    with pytest.raises(InputError) as info:
        _ingest(
            keys_root,
            data_root,
            path,
            care_descriptor,
            rows_per_group=50_000,
            rows_per_file=100_000,
            progress=lambda done, total: written.append(done),
        )
    text = str(info.value)
    assert "column 'age' is declared int64" in text
    assert f"first at data row {rows}" in text
    assert "unknown" not in text  # the value itself is never shown
    assert written  # work was under way when the bad value turned up
    assert _leftovers(data_root) == []


def test_an_interrupted_ingest_leaves_nothing_and_the_version_can_be_ingested_again(
    keys_root: Path,
    data_root: Path,
    tmp_path: Path,
    source: pa.Table,
) -> None:
    path = tmp_path / "big.parquet"
    pq.write_table(pa.concat_tables([source] * 400), path)  # 400k rows: several batches

    def interrupt(done: int, total: int | None) -> None:
        if done > 300_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _ingest(
            keys_root,
            data_root,
            path,
            None,
            rows_per_group=50_000,
            rows_per_file=100_000,
            progress=interrupt,
        )
    assert _leftovers(data_root) == []
    assert _ingest(keys_root, data_root, path, None, rows_per_file=100_000).row_count == 400_000


def test_an_existing_version_is_refused_and_left_untouched(
    keys_root: Path, data_root: Path, csv_source: Path, care: Dataset
) -> None:
    before = {f.path: (data_root / f.path).read_bytes() for f in care.files}
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, csv_source, None)
    assert "dataset 'care' already has a version 1" in str(info.value)
    assert "ingest as version 2" in str(info.value)
    assert {p: (data_root / p).read_bytes() for p in before} == before
    assert _ingest(keys_root, data_root, csv_source, None, version=2).version == 2


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("care.xlsx", "a,b\n1,2\n", "only .csv and .parquet files can be ingested"),
        ("care.csv", "", "is empty"),
        ("care.csv", "a,b\n", "has a header but no rows"),
        ("care.csv", "a,b\n1,2\n3,4,5\n", "check every row has as many fields as the header"),
        ("care.csv", "Date of birth,b\n1,2\n", "column name 'Date of birth' is not allowed"),
        ("care.csv", "a,a\n1,2\n", "column 'a' appears 2 times"),
        ("care.parquet", "not parquet", "is not a readable Parquet file"),
    ],
)
def test_unusable_sources_are_refused_with_a_fix(
    keys_root: Path, data_root: Path, tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, path, None)
    assert expected in str(info.value)
    assert "Fix (you):" in str(info.value)
    assert _leftovers(data_root) == []


def test_a_missing_source_is_refused(keys_root: Path, data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        _ingest(keys_root, data_root, tmp_path / "nope.csv", None)


def test_bad_arguments_are_all_reported_at_once(
    keys_root: Path, data_root: Path, csv_source: Path, care_descriptor: DatasetDescriptor
) -> None:
    with pytest.raises(InputError) as info:
        _ingest(
            keys_root,
            data_root,
            csv_source,
            care_descriptor,
            name="Care Data",
            version=0,
            rows_per_group=0,
        )
    text = str(info.value)
    assert "dataset name 'Care Data' is not allowed" in text
    assert "version 0 must be a whole number, 1 or more" in text
    assert "rows per row group 0" in text
    assert "the descriptor is for dataset 'care', not 'Care Data'" in text


def test_a_key_store_others_can_read_is_refused_before_any_work(
    keys_root: Path, data_root: Path, csv_source: Path
) -> None:
    keys_root.chmod(0o755)
    with pytest.raises(PlatformError, match="lets other users in"):
        _ingest(keys_root, data_root, csv_source, None)
    assert _leftovers(data_root) == []


# --- descriptors ---------------------------------------------------------------------


def test_read_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "care.yaml"
    path.write_text(
        "name: care\n"
        "description: Adult social care\n"
        "columns:\n"
        "  - {name: person_id, type: string, sensitivity: identifier}\n"
        "  - {name: age, type: int64, sensitivity: quasi_identifier}\n"
        "  - {name: cost, type: float64, description: pounds}\n"
        "unit: person_id\n"
    )
    descriptor = read_descriptor(path)
    assert descriptor.name == "care"
    assert descriptor.unit == "person_id"
    assert [(c.name, c.sensitivity) for c in descriptor.columns] == [
        ("person_id", Sensitivity.IDENTIFIER),
        ("age", Sensitivity.QUASI_IDENTIFIER),
        ("cost", Sensitivity.ATTRIBUTE),
    ]


def test_a_bad_descriptor_lists_every_problem_readably(tmp_path: Path) -> None:
    path = tmp_path / "care.yaml"
    path.write_text(
        "name: care\n"
        "colour: blue\n"
        "columns:\n"
        "  - {name: person_id, type: string, sensitivity: secret}\n"
        "  - {name: 'date of birth', type: date32}\n"
        "  - {name: age, type: integer}\n"
    )
    with pytest.raises(InputError) as info:
        read_descriptor(path)
    text = str(info.value)
    assert "has 4 problem(s)" in text
    assert "columns[0] ('person_id').sensitivity: Input should be 'identifier'" in text
    assert "columns[1] ('date of birth').name: column name 'date of birth' is not allowed" in text
    assert "columns[2] ('age').type: type 'integer' is not one tre stores" in text
    assert "colour: Extra inputs are not permitted" in text
    assert "Traceback" not in text
    assert "errors.pydantic.dev" not in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("columns: [unclosed\n", "is not valid YAML"),
        ("- just\n- a list\n", "must be a mapping with 'columns'"),
        (
            "columns:\n  - {name: a, type: int64}\n  - {name: a, type: string}\n",
            "the descriptor: columns listed more than once: a",
        ),
        (
            "unit: person\ncolumns:\n  - {name: person_id, type: string, sensitivity: identifier}"
            "\n",
            "unit 'person' is not one of the columns (person_id)",
        ),
        (
            "unit: age\ncolumns:\n  - {name: age, type: int64}\n",
            "unit 'age' has sensitivity attribute; a unit identifies who a row is about",
        ),
    ],
)
def test_malformed_descriptors_are_refused(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(content)
    with pytest.raises(InputError, match="descriptor") as info:
        read_descriptor(path)
    assert expected in str(info.value)


def test_a_missing_descriptor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_descriptor(tmp_path / "nope.yaml")


# --- symlinks and file content in errors ------------------------------------------

SECRET = "root:$6$Zx9-secret-hash-line:19000:0:99999:7:::"
HIDDEN = "Zx9-secret-hash"  # the part of SECRET no error may show


def _outside(tmp_path: Path, name: str = "shadow") -> Path:
    """A readable file outside any source folder, holding a secret line."""
    folder = tmp_path / "etc"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"{SECRET}\nbin:x:1:1:::\n")
    return path


def test_a_source_that_is_a_symlink_to_a_non_data_file_is_refused_unread(
    keys_root: Path, data_root: Path, tmp_path: Path
) -> None:
    link = tmp_path / "care.csv"
    link.symlink_to(_outside(tmp_path))
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, link, None)
    text = str(info.value)
    assert "is a symlink to" in text and "not a .csv or .parquet file" in text
    assert HIDDEN not in text
    assert _leftovers(data_root) == []


@pytest.mark.parametrize("target", ["folder", "fifo", "device", "nowhere"])
def test_a_symlinked_source_must_lead_to_a_regular_file(
    keys_root: Path, data_root: Path, tmp_path: Path, target: str
) -> None:
    leads_to = {
        "folder": tmp_path / "dir.csv",
        "fifo": tmp_path / "pipe.csv",
        "device": Path("/dev/null"),
        "nowhere": tmp_path / "gone.csv",
    }[target]
    if target == "folder":
        leads_to.mkdir()
    if target == "fifo":
        os.mkfifo(leads_to)
    link = tmp_path / "care.csv"
    link.symlink_to(leads_to)
    with pytest.raises(InputError) as info:  # a FIFO would hang if it were opened
        _ingest(keys_root, data_root, link, None)
    expected = {
        "folder": "is a symlink to a folder",
        "fifo": "is not a regular file (a FIFO)",
        "device": "is not a regular file (a character device)",
        "nowhere": "leads nowhere",
    }[target]
    assert expected in str(info.value)


def test_a_csv_line_that_does_not_parse_is_named_by_number_never_quoted(
    keys_root: Path, data_root: Path, tmp_path: Path
) -> None:
    path = tmp_path / "care.csv"
    path.write_text("a,b,c\n1,2,3\n" + SECRET.replace(":", ";") + "\n")
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, path, None)
    text = str(info.value)
    assert "line 3 has 1 field(s) where the header has 3" in text
    assert HIDDEN not in text


def test_a_value_that_overflows_its_declared_type_is_not_quoted(
    keys_root: Path, data_root: Path, tmp_path: Path
) -> None:
    path = tmp_path / "care.parquet"
    pq.write_table(pa.table({"n": pa.array([1, 2, 987654321], pa.int64())}), path)
    descriptor = DatasetDescriptor(columns=[{"name": "n", "type": "int16"}])
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, path, descriptor)
    text = str(info.value)
    assert "column 'n' is declared int16" in text and "first at data row 3" in text
    assert "987654321" not in text


def test_a_folder_with_a_symlink_leading_outside_is_refused_naming_it(
    keys_root: Path, data_root: Path, tmp_path: Path, csv_source: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(csv_source, folder / "a.csv")
    secret_csv = _outside(tmp_path, "secret.csv")
    (folder / "b.csv").symlink_to(secret_csv)
    (folder / "sub").mkdir()
    (folder / "sub" / "c.csv").symlink_to(_outside(tmp_path))
    (folder / "elsewhere").symlink_to(tmp_path / "etc", target_is_directory=True)
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, folder, None)
    text = str(info.value)
    assert "holds symlinks that do not lead to a data file inside it" in text
    assert f"b.csv: a symlink to {secret_csv}, outside the folder" in text
    assert "sub/c.csv: a symlink to" in text and "elsewhere: a symlink to" in text
    assert HIDDEN not in text
    assert _leftovers(data_root) == []


def test_a_folder_may_link_to_its_own_files_but_not_read_one_twice(
    keys_root: Path, data_root: Path, tmp_path: Path, csv_source: Path
) -> None:
    folder = tmp_path / "drop"
    (folder / ".raw").mkdir(parents=True)
    shutil.copy(csv_source, folder / ".raw" / "care.csv")
    (folder / "care.csv").symlink_to(folder / ".raw" / "care.csv")
    assert _ingest(keys_root, data_root, folder, None).row_count == 1000
    (folder / "again.csv").symlink_to(folder / ".raw" / "care.csv")
    with pytest.raises(InputError) as info:
        _ingest(keys_root, data_root, folder, None, version=2)
    assert "the same file under two names" in str(info.value)
    assert "again.csv and care.csv" in str(info.value)


def test_a_file_swapped_for_a_symlink_after_the_checks_is_not_opened(tmp_path: Path) -> None:
    link = tmp_path / "care.csv"
    link.symlink_to(_outside(tmp_path))
    with pytest.raises(InputError, match="cannot be opened"):
        open_checked(link)  # what every read goes through, with O_NOFOLLOW


def test_a_descriptor_that_is_not_yaml_is_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("columns: [a\n" + SECRET + ": : x\n")
    with pytest.raises(InputError) as info:
        read_descriptor(path)
    assert "line 2, column" in str(info.value)
    assert HIDDEN not in str(info.value)


@pytest.mark.parametrize("row", ["", "Row #3: "])
def test_a_conversion_error_is_named_whether_pyarrow_read_on_one_thread_or_many(tmp_path, row):
    """pyarrow puts the row first when it reads on one thread; either way the column and
    its type are named, never the value."""
    import pyarrow as pa

    from tre.secured.source_errors import csv_errors

    path = tmp_path / "e.csv"
    path.write_text("a,b\n1,x\nthirty,y\n")
    with pytest.raises(InputError) as info, csv_errors(path, path, ["a", "b"], declared=True):
        raise pa.ArrowInvalid(
            f"In CSV column #0: {row}CSV conversion error to int64: invalid value 'thirty'"
        )
    text = str(info.value)
    assert "column 'a' is declared int64, but its value in data row 2 is not one" in text
    assert "thirty" not in text
