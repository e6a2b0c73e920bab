"""Both key-management systems keep the same contract: versions, wrapping that names its
version, rotation, destruction of old versions, signatures; and never show key bytes.

Every contract test runs on the local key store and on a real SoftHSM token.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tre.keys.keystore import KeyStoreError
from tre.keys.keysystems import open_master_keys
from tre.keys.masterkeys import (
    AUDIT_KEY,
    SIGNING_KEY,
    KeyVersionError,
    KmsSettings,
    MasterKeys,
    version_of,
)
from tre.keys.pkcs11keys import Pkcs11MasterKeys


@pytest.fixture(params=["local", "pkcs11"])
def keys(request: pytest.FixtureRequest, local_kms: KmsSettings) -> MasterKeys:
    settings = local_kms if request.param == "local" else request.getfixturevalue("softhsm")
    return open_master_keys(settings)


def test_a_new_key_has_version_1_and_wraps_under_it(keys: MasterKeys) -> None:
    assert keys.versions("care.footer") == []
    assert keys.ensure("care.footer") is True
    assert keys.ensure("care.footer") is False  # never replaced once data may use it
    assert keys.versions("care.footer") == [1]
    kek = os.urandom(32)
    wrapped = keys.wrap("care.footer", kek)
    assert wrapped.startswith("v1:") and version_of(wrapped) == 1
    assert kek not in base64.b64decode(wrapped[3:])
    assert keys.wrap("care.footer", kek) != wrapped  # a fresh nonce every time
    assert keys.unwrap("care.footer", wrapped) == kek
    assert keys.key_ids() == ["care.footer"]


def test_a_wrapped_key_opens_only_under_its_own_key_id(keys: MasterKeys) -> None:
    keys.ensure("care.a")
    keys.ensure("care.b")
    wrapped = keys.wrap("care.a", os.urandom(32))
    with pytest.raises(KeyStoreError, match="cannot be unwrapped"):
        keys.unwrap("care.b", wrapped)


def test_rotation_adds_a_version_and_old_wraps_still_open(keys: MasterKeys) -> None:
    keys.ensure("care.a")
    kek = os.urandom(32)
    old = keys.wrap("care.a", kek)
    assert keys.rotate("care.a") == 2
    new = keys.wrap("care.a", kek)
    assert (version_of(old), version_of(new)) == (1, 2)
    assert keys.unwrap("care.a", old) == keys.unwrap("care.a", new) == kek
    assert keys.versions("care.a") == [1, 2] and keys.current("care.a") == 2


def test_destroying_an_old_version_makes_what_it_wrapped_unreadable(keys: MasterKeys) -> None:
    keys.ensure("care.a")
    old = keys.wrap("care.a", os.urandom(32))
    keys.rotate("care.a")
    with pytest.raises(KeyStoreError, match="is its newest"):
        keys.destroy("care.a", 2)
    keys.destroy("care.a", 1)
    assert keys.versions("care.a") == [2]
    with pytest.raises(KeyVersionError) as info:
        keys.unwrap("care.a", old)
    assert "version 1 of master key 'care.a'" in str(info.value)
    assert "tre keys list" in str(info.value)
    with pytest.raises(KeyStoreError, match="has no version 1"):
        keys.destroy("care.a", 1)


def test_a_missing_key_cannot_wrap_or_rotate(keys: MasterKeys) -> None:
    with pytest.raises(KeyStoreError, match=r"'care\.nope' is not in the"):
        keys.wrap("care.nope", b"x" * 32)
    with pytest.raises(KeyStoreError, match="does not exist, so it cannot be rotated"):
        keys.rotate("care.nope")


def test_signatures_verify_only_the_signed_bytes(keys: MasterKeys) -> None:
    signature = keys.sign(b"grant claims")
    assert len(signature) == 32
    assert keys.verify(b"grant claims", signature)
    assert not keys.verify(b"grant claimz", signature)
    assert not keys.verify(b"grant claims", bytes(32))
    assert keys.sign(b"grant claims") == signature  # an HMAC: deterministic
    assert SIGNING_KEY not in keys.key_ids()  # listed keys are data keys only


def test_a_rotated_signing_key_still_verifies_what_its_old_version_signed(
    keys: MasterKeys,
) -> None:
    old = keys.sign(b"claims")
    assert keys.signing_version() == 1
    keys.rotate(SIGNING_KEY)
    assert keys.signing_version() == 2
    new = keys.sign(b"claims")
    assert new != old  # a new key
    assert keys.verify(b"claims", old, 1) and keys.verify(b"claims", new, 2)
    assert not keys.verify(b"claims", old, 2)  # each version checks its own signatures
    keys.destroy(SIGNING_KEY, 1)
    with pytest.raises(KeyVersionError, match="version 1 of the grant-signing key is not"):
        keys.verify(b"claims", old, 1)
    assert keys.verify(b"claims", new, 2)


@pytest.mark.parametrize("text", ["", "care", "v0:abc", "vx:abc", "1:abc", b"\xff"])
def test_malformed_wrapped_keys_are_refused(text: str | bytes) -> None:
    with pytest.raises(KeyVersionError, match="not in the form tre writes"):
        version_of(text)


def test_local_versions_are_private_files_named_by_version(local_kms: KmsSettings) -> None:
    keys = open_master_keys(local_kms)
    keys.ensure("care.a")
    keys.rotate("care.a")
    root = Path(local_kms.keys_root)
    assert sorted(p.name for p in root.iterdir()) == ["care.a.v1.key", "care.a.v2.key"]
    keys.destroy("care.a", 1)
    assert sorted(p.name for p in root.iterdir()) == ["care.a.v2.key"]


def test_hsm_keys_never_leave_the_token(softhsm: KmsSettings) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    keys = open_master_keys(softhsm)
    assert isinstance(keys, Pkcs11MasterKeys)
    keys.ensure("care.a")
    keys.sign(b"x")
    assert list(Path(softhsm.keys_root).iterdir()) == []  # nothing on disk in TRE_HOME
    lib = pkcs11.lib(softhsm.pkcs11_module)
    # This process is logged in already (login is per application, not per session).
    with lib.get_token(token_label=softhsm.pkcs11_token).open() as session:
        found = {
            o.label: (o[Attribute.SENSITIVE], o[Attribute.EXTRACTABLE])
            for o in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
        }
    assert found == {
        "tre:care.a:v1": (True, False),
        "tre:tre.grant-signing:v1": (True, False),
    }


def test_a_wrong_hsm_pin_or_token_is_reported_with_the_fix(
    softhsm: KmsSettings, tmp_path: Path
) -> None:
    bad_pin = tmp_path / "bad.pin"
    bad_pin.write_text("0000")
    bad_pin.chmod(0o600)
    wrong = KmsSettings(**{**dict(softhsm.pairs()), "pkcs11_pin_file": str(bad_pin)})
    with pytest.raises(KeyStoreError) as info:
        open_master_keys(wrong).key_ids()
    assert f"cannot log in to the PKCS#11 token {softhsm.pkcs11_token!r}" in str(info.value)
    assert "0000" not in str(info.value)
    nowhere = KmsSettings(**{**dict(softhsm.pairs()), "pkcs11_token": "no-such-token"})
    with pytest.raises(KeyStoreError, match="no PKCS#11 token labelled 'no-such-token'"):
        open_master_keys(nowhere).key_ids()
    bad_pin.chmod(0o644)
    with pytest.raises(KeyStoreError, match="lets other users read it"):
        open_master_keys(wrong).key_ids()


def test_the_audit_mac_is_keyed_stable_and_kept_out_of_the_listing(keys: MasterKeys) -> None:
    first = keys.audit_mac(b"event")
    assert len(first) == 32 and keys.audit_mac(b"event") == first  # made once, then reused
    assert keys.audit_mac(b"other") != first and keys.sign(b"event") != first
    assert keys.versions(AUDIT_KEY) == [1] and keys.key_ids() == []
    with pytest.raises(KeyStoreError, match="cannot be rotated"):
        keys.rotate(AUDIT_KEY)
