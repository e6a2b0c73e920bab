"""The local key store keeps master keys private, whole and out of every message."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tre.keys.keystore import KEY_BYTES, KeyStoreError, LocalKeyStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> LocalKeyStore:
    root = tmp_path / "keys"
    root.mkdir(mode=0o700)
    return LocalKeyStore(root)


def test_ensure_key_creates_a_private_256_bit_key_once(store: LocalKeyStore) -> None:
    assert not store.exists("care.footer")
    assert store.ensure_key("care.footer") is True
    key = store.get("care.footer")
    assert len(key) == KEY_BYTES == 32
    assert _mode(store.root / "care.footer.key") == 0o600
    # A second call must never replace a key data is already encrypted with.
    assert store.ensure_key("care.footer") is False
    assert store.get("care.footer") == key
    assert store.exists("care.footer")
    assert [p.name for p in store.root.iterdir()] == ["care.footer.key"]  # no temp left


def test_keys_are_random_per_id(store: LocalKeyStore) -> None:
    store.ensure_key("a.footer")
    store.ensure_key("b.footer")
    assert store.get("a.footer") != store.get("b.footer")


def test_key_file_is_private_even_with_a_permissive_umask(store: LocalKeyStore) -> None:
    old = os.umask(0)
    try:
        store.ensure_key("care.attribute")
    finally:
        os.umask(old)
    assert _mode(store.root / "care.attribute.key") == 0o600


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o777])
def test_refuses_a_folder_others_can_enter(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "keys"
    root.mkdir()
    root.chmod(mode)
    with pytest.raises(KeyStoreError) as info:
        LocalKeyStore(root)
    assert f"{mode:04o}" in str(info.value)
    assert f"chmod 700 {root}" in str(info.value)


def test_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError) as info:
        LocalKeyStore(tmp_path / "nowhere")
    assert "does not exist" in str(info.value)
    assert "tre init" in str(info.value)


def test_refuses_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("")
    (tmp_path / "keys").chmod(0o600)
    with pytest.raises(KeyStoreError, match="not a folder"):
        LocalKeyStore(tmp_path / "keys")


@pytest.mark.parametrize(
    "key_id", ["../x", "../../etc/passwd", "a/b", ".hidden", "", "Upper", "x" * 129, "a b"]
)
def test_refuses_key_ids_that_could_escape_the_folder(store: LocalKeyStore, key_id: str) -> None:
    for call in (store.ensure_key, store.get, store.exists):
        with pytest.raises(KeyStoreError, match="is not allowed"):
            call(key_id)
    assert not (store.root.parent / "x").exists()
    assert list(store.root.iterdir()) == []


def test_missing_key_error_names_the_key_but_no_key_bytes(store: LocalKeyStore) -> None:
    store.ensure_key("care.footer")
    secret = store.get("care.footer")
    with pytest.raises(KeyStoreError) as info:
        store.get("care.identifier")
    text = str(info.value)
    assert "'care.identifier' is not in the key store" in text
    assert "restore the key from backup" in text
    assert secret.hex() not in text
    assert repr(secret) not in text
    assert secret.hex() not in repr(store)


def test_damaged_key_is_refused_without_showing_it(store: LocalKeyStore) -> None:
    damaged = b"0123456789abcdef0123456789abcde"  # 31 bytes
    path = store.root / "care.footer.key"
    path.write_bytes(damaged)
    path.chmod(0o600)
    with pytest.raises(KeyStoreError) as info:
        store.get("care.footer")
    assert "31 bytes instead of 32" in str(info.value)
    assert damaged.decode() not in str(info.value)


def test_key_readable_by_others_is_refused(store: LocalKeyStore) -> None:
    store.ensure_key("care.footer")
    (store.root / "care.footer.key").chmod(0o644)
    with pytest.raises(KeyStoreError, match="lets other users read it"):
        store.get("care.footer")


def test_names_lists_keys_but_not_temporary_files(store: LocalKeyStore) -> None:
    store.ensure_key("b.footer.v1")
    store.ensure_key("a.c0123.v2")
    (store.root / ".a.c0123.v3.0011.tmp").write_bytes(b"x")
    (store.root / "revoked").mkdir()
    assert store.names() == ["a.c0123.v2", "b.footer.v1"]


def test_delete_removes_a_key_for_good(store: LocalKeyStore) -> None:
    store.ensure_key("care.footer.v1")
    assert store.delete("care.footer.v1") is True
    assert not store.exists("care.footer.v1")
    assert list(store.root.iterdir()) == []
    assert store.delete("care.footer.v1") is False
    with pytest.raises(KeyStoreError, match="is not allowed"):
        store.delete("../elsewhere")
