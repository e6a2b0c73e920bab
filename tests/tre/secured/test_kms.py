"""The KMS glue: key ids per class, AES-GCM wrapping, allow-lists, per-process caches.

Allow-list refusals are tested on the client directly: letting pyarrow meet a refused
key inside a metadata call can abort the whole test process.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet.encryption as pe
import pytest

from tre.errors import PlatformError
from tre.models import Dataset, Sensitivity
from tre.secured.keystore import KeyStoreError, LocalKeyStore
from tre.secured.kms import (
    KeyNotAllowed,
    KmsError,
    LocalKmsClient,
    column_key_id,
    connection_config,
    decryption_properties,
    footer_key_id,
)
from tre.secured.reader import SecuredSource, fragments, read_fragment


def _client(keys: Path, allowed: list[str] | None = None) -> LocalKmsClient:
    return LocalKmsClient(connection_config(keys, allowed))


def test_one_master_key_for_the_footer_and_one_per_sensitivity_class() -> None:
    assert footer_key_id("care") == "care.footer"
    assert column_key_id("care", Sensitivity.IDENTIFIER) == "care.identifier"
    assert column_key_id("care", Sensitivity.QUASI_IDENTIFIER) == "care.quasi_identifier"
    assert column_key_id("care", Sensitivity.ATTRIBUTE) == "care.attribute"


def test_wrap_and_unwrap_round_trip_with_a_fresh_nonce(keys_root: Path) -> None:
    LocalKeyStore(keys_root).ensure_key("care.attribute")
    client = _client(keys_root)
    dek = os.urandom(32)
    first = client.wrap_key(dek, "care.attribute")
    second = client.wrap_key(dek, "care.attribute")
    assert first != second  # random nonce: equal keys do not wrap to equal text
    assert len(base64.b64decode(first)) == 12 + 32 + 16  # nonce + key + GCM tag
    assert dek not in base64.b64decode(first)
    assert client.unwrap_key(first, "care.attribute") == dek


def test_a_reader_allowed_only_attributes_cannot_unwrap_an_identifier_key(
    keys_root: Path,
) -> None:
    store = LocalKeyStore(keys_root)
    for key_id in ("care.footer", "care.identifier", "care.attribute"):
        store.ensure_key(key_id)
    wrapped = _client(keys_root).wrap_key(os.urandom(32), "care.identifier")
    reader = _client(keys_root, ["care.footer", "care.attribute"])
    with pytest.raises(KeyNotAllowed) as info:
        reader.unwrap_key(wrapped, "care.identifier")
    text = str(info.value)
    assert "may not use master key 'care.identifier'" in text
    assert "it may use: care.attribute, care.footer" in text
    assert "project's approval" in text
    with pytest.raises(KeyNotAllowed):
        reader.wrap_key(os.urandom(32), "care.identifier")


def test_a_key_wrapped_under_one_master_key_does_not_unwrap_under_another(
    keys_root: Path,
) -> None:
    store = LocalKeyStore(keys_root)
    store.ensure_key("care.attribute")
    store.ensure_key("care.identifier")
    client = _client(keys_root)
    wrapped = client.wrap_key(os.urandom(32), "care.attribute")
    with pytest.raises(KmsError, match="cannot be unwrapped"):
        client.unwrap_key(wrapped, "care.identifier")
    tampered = base64.b64decode(wrapped)
    tampered = base64.b64encode(tampered[:-1] + bytes([tampered[-1] ^ 1])).decode()
    with pytest.raises(KmsError, match="the key store holds a different key"):
        client.unwrap_key(tampered, "care.attribute")


def test_client_needs_a_key_store(keys_root: Path) -> None:
    with pytest.raises(PlatformError, match="names no key store"):
        LocalKmsClient(pe.KmsConnectionConfig())


def test_each_store_and_allow_list_gets_its_own_access_token(
    keys_root: Path, tmp_path: Path
) -> None:
    # pyarrow caches clients and unwrapped KEKs per token: a narrow reader must never
    # share a token (and so a KEK cache) with a wider one.
    narrow = connection_config(keys_root, ["care.footer", "care.attribute"])
    same = connection_config(keys_root, ["care.attribute", "care.footer", "care.footer"])
    wide = connection_config(keys_root, ["care.footer", "care.attribute", "care.identifier"])
    writer = connection_config(keys_root)
    elsewhere = connection_config(tmp_path, ["care.footer", "care.attribute"])
    tokens = {c.key_access_token for c in (narrow, wide, writer, elsewhere)}
    assert len(tokens) == 4
    assert same.key_access_token == narrow.key_access_token


def test_decryption_properties_are_cached_per_store_and_allow_list(
    keys_root: Path, care: Dataset
) -> None:
    first = decryption_properties(keys_root, ["care.footer", "care.attribute"])
    again = decryption_properties(keys_root, ["care.attribute", "care.footer"])
    other = decryption_properties(keys_root, ["care.footer"])
    assert first is again
    assert other is not first


def test_decryption_properties_refuse_a_missing_key_before_pyarrow(
    keys_root: Path, care: Dataset
) -> None:
    (keys_root / "care.identifier.key").unlink()
    with pytest.raises(KeyStoreError, match=r"'care\.identifier' is not in the key store"):
        decryption_properties(keys_root, ["care.footer", "care.identifier"])


def test_a_reader_makes_one_kms_call_per_master_key_not_per_file(
    keys_root: Path, data_root: Path, care: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    unwrap = LocalKmsClient.unwrap_key

    def counting(self: LocalKmsClient, wrapped: str, master_key_identifier: str) -> bytes:
        calls.append(master_key_identifier)
        return unwrap(self, wrapped, master_key_identifier)

    monkeypatch.setattr(LocalKmsClient, "unwrap_key", counting)
    source = SecuredSource.from_dataset(
        data_root=data_root, keys_root=keys_root, dataset=care, granted=["age", "cost"]
    )
    parts = fragments(source, target_rows=100)
    assert len({p.file for p in parts}) == 4
    for part in parts:
        read_fragment(source, part, ["age", "cost"])
    assert sorted(calls) == ["care.attribute", "care.footer", "care.quasi_identifier"]


_BYPASS = """
import sys
import pyarrow.parquet as pq
from pathlib import Path
from tre.secured.kms import KeyNotAllowed, decryption_properties

keys, path = Path(sys.argv[1]), sys.argv[2]
wide = decryption_properties(keys, ["care.footer", "care.identifier"])
first = pq.ParquetFile(path, decryption_properties=wide).read(columns=["person_id"])
print("wide read", first["person_id"][0], flush=True)
narrow = decryption_properties(keys, ["care.footer", "care.attribute"])
try:
    table = pq.ParquetFile(path, decryption_properties=narrow).read(columns=["person_id"])
    print("LEAKED", table["person_id"][0], flush=True)
except KeyNotAllowed as exc:
    print("refused:", exc.message, flush=True)
"""


def test_a_narrow_reader_is_not_served_keys_a_wider_reader_unwrapped(
    keys_root: Path, data_root: Path, care: Dataset
) -> None:
    # Bypasses check_columns on purpose, in a child process: pyarrow may abort when it
    # meets a refused key, and that must not take the test run with it.
    done = subprocess.run(
        [sys.executable, "-c", _BYPASS, str(keys_root), str(data_root / care.files[0].path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "wide read P0000000" in done.stdout, done.stderr
    assert "LEAKED" not in done.stdout
    # Refused cleanly (what pyarrow 26 does), or the child aborted: either way no data.
    refused = "refused: this reader may not use master key 'care.identifier'" in done.stdout
    assert refused or done.returncode != 0, done.stderr
