"""The KMS glue: a key per column, writers and grant-holding readers, a handful of KMS
calls per job, and rotation without rewriting data.

Refusals inside pyarrow are tested in child processes: letting pyarrow meet a refused
key inside a metadata call can abort the whole process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from tre.keys.grants import KeyNotGranted
from tre.keys.keysystems import open_master_keys
from tre.keys.kms import (
    KeyNotAllowed,
    TreKmsClient,
    clear_caches,
    column_key_id,
    footer_key_id,
    forget_writer_keks,
    key_material_path,
    key_material_versions,
    reader_config,
    rotate_file,
    writer_config,
)
from tre.keys.masterkeys import KeyVersionError, KmsSettings
from tre.models import Dataset, DatasetDescriptor
from tre.secured.ingest import ingest
from tre.secured.reader import SecuredSource, fragments, read_fragment, read_table

Grant = Callable[..., str]
Source = Callable[..., SecuredSource]


def test_one_master_key_per_column_with_opaque_ids() -> None:
    assert footer_key_id("care") == "care.footer"
    age, ward = column_key_id("care", "age"), column_key_id("care", "ward")
    assert age.startswith("care.c") and len(age) == len("care.c") + 16
    assert len({age, ward, column_key_id("other", "age"), column_key_id("care", "Age")}) == 4
    assert column_key_id("care", "age") == age  # the same in every version
    assert "age" not in age.removeprefix("care.")  # key material must not spell the schema


def test_key_material_beside_each_file_names_no_column(
    data_root: Path, care: Dataset, keys_root: Path
) -> None:
    for entry in care.files:
        text = key_material_path(data_root / entry.path).read_text()
        for column in care.column_names:
            assert f'"{column}"' not in text and f"{column}\\" not in text
    versions = key_material_versions(data_root / care.files[0].path)
    expected = {footer_key_id("care")} | {column_key_id("care", c) for c in care.column_names}
    assert versions == {key: {1} for key in expected}


def test_only_writers_wrap_and_readers_unwrap_only_what_their_grant_covers(
    local_kms: KmsSettings, grant_token: Grant
) -> None:
    keys = open_master_keys(local_kms)
    keys.ensure("care.footer")
    keys.ensure(column_key_id("care", "person_id"))
    writer = TreKmsClient(writer_config(local_kms))
    kek = os.urandom(32)
    wrapped = writer.wrap_key(kek, "care.footer")
    reader = TreKmsClient(reader_config(local_kms, grant_token("care", ["age"])))
    assert reader.unwrap_key(wrapped, "care.footer") == kek
    with pytest.raises(KeyNotAllowed, match="a reader may not wrap keys"):
        reader.wrap_key(kek, "care.footer")
    secret = writer.wrap_key(kek, column_key_id("care", "person_id"))
    with pytest.raises(KeyNotGranted, match="does not cover 1 key"):
        reader.unwrap_key(secret, column_key_id("care", "person_id"))
    assert "tre-grant" not in repr(reader)  # the token is a credential


def test_a_job_makes_one_kms_call_per_master_key_not_per_file(
    care: Dataset, source_for: Source, unwrap_calls: list[str]
) -> None:
    calls = unwrap_calls
    source = source_for(care, ["age", "cost"])
    parts = fragments(source, target_rows=100)
    assert len(parts) == 12 and len({p.file for p in parts}) == 4
    for _ in range(2):  # two steps reading the same files
        for part in parts:
            read_fragment(source, part, ["age", "cost"])
    assert sorted(calls) == sorted(
        ["care.footer", column_key_id("care", "age"), column_key_id("care", "cost")]
    )


_READ = """
import sys
import pyarrow.parquet as pq
from pathlib import Path
from tre.errors import TreError
from tre.keys.kms import decryption_properties
from tre.keys.masterkeys import KmsSettings

keys, path, column = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = KmsSettings.local(keys)
for token in sys.argv[4:]:
    props = decryption_properties(settings, token, path)
    try:
        table = pq.ParquetFile(path, decryption_properties=props).read(columns=[column])
        print("read", table[column][0], flush=True)
    except TreError as exc:
        print("refused:", exc.message, flush=True)
"""


def _read_directly(keys_root: Path, path: Path, column: str, *tokens: str) -> tuple[int, str]:
    """Ask pyarrow itself for `column` under each token in turn, in a child process
    (bypassing the reader's checks); its exit code and output."""
    done = subprocess.run(
        [sys.executable, "-c", _READ, str(keys_root), str(path), column, *tokens],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_narrow_reader_is_not_served_keys_a_wider_reader_unwrapped(
    keys_root: Path, data_root: Path, care: Dataset, grant_token: Grant
) -> None:
    # Two grants in one process; pyarrow's caches are per token, so the narrow one
    # must not be served the person_id key the wide one unwrapped.
    wide = grant_token("care", ["person_id"], job=1)
    narrow = grant_token("care", ["cost"], job=2)
    code, out = _read_directly(keys_root, data_root / care.files[0].path, "person_id", wide, narrow)
    assert out.count("P0000000") == 1 and out.startswith("read P0000000"), out
    # Refused cleanly (what pyarrow 26 does), or the child aborted: either way no data.
    refused = "refused: the key grant of job 2 (project 'test-project') does not cover"
    assert refused in out or code != 0, out


def test_a_stolen_token_of_project_a_opens_nothing_of_project_b(
    keys_root: Path, data_root: Path, care: Dataset, grant_token: Grant
) -> None:
    alpha = grant_token("alpha_data", ["age"], project="alpha", job=3)
    code, out = _read_directly(keys_root, data_root / care.files[0].path, "age", alpha)
    assert not any(line.startswith("read ") for line in out.splitlines()), out
    assert "refused: the key grant of job 3 (project 'alpha') does not cover" in out or code, out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rotate_all(settings: KmsSettings, data_root: Path, dataset: Dataset) -> None:
    keys = open_master_keys(settings)
    for key_id in keys.key_ids():
        keys.rotate(key_id)
    forget_writer_keks(settings)
    for entry in dataset.files:
        rotate_file(settings, data_root / entry.path)


@pytest.mark.parametrize("kind", ["local", "pkcs11"])
def test_rotation_rewraps_without_rewriting_data_and_old_versions_can_go(
    kind: str,
    request: pytest.FixtureRequest,
    local_kms: KmsSettings,
    data_root: Path,
    keys_root: Path,
    csv_source: Path,
    care_descriptor: DatasetDescriptor,
    source: pa.Table,
    grant_token: Grant,
) -> None:
    settings = local_kms if kind == "local" else request.getfixturevalue("softhsm")
    care = ingest(
        keys_root=keys_root,
        data_root=data_root,
        name="care",
        version=1,
        source=csv_source,
        descriptor=care_descriptor,
        ingested_by="admin",
        rows_per_group=100,
        rows_per_file=250,
        kms=settings,
    )
    before = {f.path: _sha(data_root / f.path) for f in care.files}
    _rotate_all(settings, data_root, care)
    assert {f.path: _sha(data_root / f.path) for f in care.files} == before  # data untouched
    for entry in care.files:
        assert set().union(*key_material_versions(data_root / entry.path).values()) == {2}
    keys = open_master_keys(settings)
    for key_id in keys.key_ids():
        keys.destroy(key_id, 1)
    clear_caches()  # a new reader: nothing cached from before the rotation
    token = grant_token("care", ["person_id", "ward"], settings=settings)
    secured = SecuredSource.from_dataset(
        data_root=data_root,
        keys_root=keys_root,
        dataset=care,
        granted=["person_id", "ward"],
        token=token,
        kms=settings,
    )
    assert read_table(secured, ["person_id", "ward"]).equals(source.select(["person_id", "ward"]))


def test_a_file_still_wrapped_with_a_destroyed_version_says_so(
    local_kms: KmsSettings, data_root: Path, care: Dataset, source_for: Source
) -> None:
    keys = open_master_keys(local_kms)
    keys.rotate("care.footer")
    keys.destroy("care.footer", 1)  # without re-wrapping first: what `tre keys` refuses
    with pytest.raises(KeyVersionError) as info:
        read_table(source_for(care, ["cost"]), ["cost"])
    assert "version 1 of master key 'care.footer'" in str(info.value)
