"""Verification names every file that no longer matches what was ingested."""

from __future__ import annotations

from pathlib import Path

from tre.keys.kms import key_material_path
from tre.models import Dataset
from tre.secured.verify import verify_version


def test_an_untouched_version_verifies(data_root: Path, care: Dataset) -> None:
    result = verify_version(data_root, care)
    assert result.ok and result.checked == 4 and result.problems == []


def test_one_flipped_byte_is_found_and_the_file_named(data_root: Path, care: Dataset) -> None:
    path = data_root / care.files[2].path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    result = verify_version(data_root, care)
    assert not result.ok
    assert result.bad_files == ["care/v1/part-00002.parquet"]
    assert result.problems[0].startswith("care/v1/part-00002.parquet: sha256 is ")
    assert "(the file was changed or damaged)" in result.problems[0]


def test_missing_files_key_material_and_strays_are_all_reported(
    data_root: Path, care: Dataset
) -> None:
    (data_root / care.files[0].path).unlink()
    key_material_path(data_root / care.files[1].path).unlink()
    (data_root / "care" / "v1" / "part-00009.parquet").write_bytes(b"PAR1")
    (data_root / care.files[3].path).chmod(0o644)
    problems = verify_version(data_root, care).problems
    assert problems == [
        "care/v1/part-00000.parquet: missing",
        "care/v1/_KEY_MATERIAL_FOR_part-00001.parquet.json: the key material of "
        "part-00001.parquet is missing (_KEY_MATERIAL_FOR_part-00001.parquet.json)",
        "care/v1/part-00003.parquet: mode 0644 lets other users read it",
        "care/v1/part-00009.parquet: a file the catalog does not list (added after ingest?)",
    ]
