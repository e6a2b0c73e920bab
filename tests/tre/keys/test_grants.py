"""Key grants: signed by the key store, checked where keys are used, expiring, revocable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tre.keys.grants import (
    Grant,
    GrantExpired,
    GrantInvalid,
    GrantRevoked,
    KeyNotGranted,
    Revocations,
    _b64,
    _unb64,
    authorise,
    forget_verified,
    make_grant,
    peek,
    sign_grant,
)
from tre.keys.keysystems import open_master_keys
from tre.keys.masterkeys import SIGNING_KEY, KmsSettings, MasterKeys


@pytest.fixture
def keys(local_kms: KmsSettings) -> MasterKeys:
    return open_master_keys(local_kms)


@pytest.fixture
def revocations(keys_root: Path) -> Revocations:
    return Revocations(keys_root)


def _grant(keys: list[str], lifetime: float = 600, project: str = "alpha") -> Grant:
    return make_grant(holder="job 7", keys=keys, lifetime=lifetime, project=project, job=7)


def test_a_signed_grant_allows_exactly_its_keys(keys: MasterKeys, revocations: Revocations) -> None:
    token = sign_grant(_grant(["care.footer", "care.cabc"]), keys)
    assert token.startswith("tre-grant.1.")
    grant = authorise(token, keys, revocations, ["care.footer", "care.cabc"])
    assert (grant.holder, grant.project, grant.job) == ("job 7", "alpha", 7)
    with pytest.raises(KeyNotGranted) as info:
        authorise(
            token,
            keys,
            revocations,
            ["care.footer", "care.cdef"],
            {"care.cdef": "column 'nhs_number' of dataset 'care'"},
        )
    text = str(info.value)
    assert "the key grant of job 7 (project 'alpha') does not cover 1 key(s)" in text
    assert "column 'nhs_number' of dataset 'care'" in text
    assert "declare the column" in text


def test_an_edited_grant_is_refused(keys: MasterKeys, revocations: Revocations) -> None:
    token = sign_grant(_grant(["care.footer"]), keys)
    prefix, version, claims, signature = token.split(".")
    wider = json.loads(_unb64(claims))
    wider["keys"].append("care.cabc")  # a job widening its own grant
    forged = ".".join([prefix, version, _b64(json.dumps(wider).encode()), signature])
    with pytest.raises(GrantInvalid, match="its signature does not match"):
        authorise(forged, keys, revocations, ["care.cabc"])
    with pytest.raises(GrantInvalid, match="not a tre key grant"):
        authorise("Bearer abc", keys, revocations, ["care.footer"])
    with pytest.raises(GrantInvalid, match="no key grant was given"):
        authorise("", keys, revocations, ["care.footer"])


def test_grants_outlive_a_rotation_of_the_signing_key_until_its_version_is_destroyed(
    keys: MasterKeys, revocations: Revocations
) -> None:
    before = sign_grant(_grant(["care.footer"]), keys)
    assert peek(before).signed_with == 1
    keys.rotate(SIGNING_KEY)
    after = sign_grant(_grant(["care.footer"]), keys)
    assert peek(after).signed_with == 2
    forget_verified()
    # A running job's grant goes on working after the rotation...
    assert authorise(before, keys, revocations, ["care.footer"]).signed_with == 1
    assert authorise(after, keys, revocations, ["care.footer"]).signed_with == 2
    # ...and cannot be moved to the new version by editing its claims.
    prefix, version, claims, signature = before.split(".")
    edited = json.loads(_unb64(claims))
    edited["signed_with"] = 2
    moved = ".".join([prefix, version, _b64(json.dumps(edited).encode()), signature])
    with pytest.raises(GrantInvalid, match="its signature does not match"):
        authorise(moved, keys, revocations, ["care.footer"])
    edited["signed_with"] = "1"
    odd = ".".join([prefix, version, _b64(json.dumps(edited).encode()), signature])
    with pytest.raises(GrantInvalid, match="the version of its signing key is malformed"):
        authorise(odd, keys, revocations, ["care.footer"])
    keys.destroy(SIGNING_KEY, 1)
    forget_verified()
    with pytest.raises(GrantInvalid, match="version 1 of the key that signed it was destroyed "):
        authorise(before, keys, revocations, ["care.footer"])
    assert authorise(after, keys, revocations, ["care.footer"]).signed_with == 2


def test_a_grant_signed_by_another_home_is_refused(
    keys: MasterKeys, revocations: Revocations, tmp_path: Path
) -> None:
    other_root = tmp_path / "elsewhere" / "keys"
    other_root.mkdir(parents=True, mode=0o700)
    other = open_master_keys(KmsSettings.local(other_root))
    token = sign_grant(_grant(["care.footer"]), other)
    with pytest.raises(GrantInvalid, match="made elsewhere"):
        authorise(token, keys, revocations, ["care.footer"])


def test_project_a_token_names_only_project_a_keys(
    keys: MasterKeys, revocations: Revocations
) -> None:
    alpha = sign_grant(_grant(["alpha_data.footer", "alpha_data.c1"], project="alpha"), keys)
    with pytest.raises(KeyNotGranted, match="project 'alpha'"):
        authorise(alpha, keys, revocations, ["beta_data.footer", "beta_data.c1"])


def test_an_expired_grant_is_refused_with_when(keys: MasterKeys, revocations: Revocations) -> None:
    grant = _grant(["care.footer"], lifetime=1)
    token = sign_grant(grant, keys)
    authorise(token, keys, revocations, ["care.footer"])
    late = Grant(**{**grant.__dict__, "expires": int(time.time()) - 5})
    with pytest.raises(GrantExpired) as info:
        authorise(sign_grant(late, keys), keys, revocations, ["care.footer"])
    assert f"expired at {late.expires_at:%Y-%m-%d %H:%M:%S} UTC" in str(info.value)
    assert "walltime" in str(info.value)


def test_a_grant_never_outlives_its_limit() -> None:
    limit = time.time() + 60
    grant = make_grant(holder="job 1", keys=["k"], lifetime=86_400, not_after=limit)
    assert grant.expires == int(limit)


def test_a_revoked_grant_is_refused_at_the_next_check_with_the_reason(
    keys: MasterKeys, revocations: Revocations, keys_root: Path
) -> None:
    grant = _grant(["care.footer"])
    token = sign_grant(grant, keys)
    authorise(token, keys, revocations, ["care.footer"])  # verified and cached
    revocations.revoke(grant.id, "project 'alpha' was suspended by ada: DSA under review")
    with pytest.raises(GrantRevoked) as info:
        authorise(token, keys, revocations, ["care.footer"])
    assert str(info.value).startswith(
        "the key grant of job 7 (project 'alpha') was revoked: project 'alpha' was "
        "suspended by ada: DSA under review"
    )
    path = keys_root / "revoked" / grant.id
    assert path.stat().st_mode & 0o777 == 0o600
    assert (keys_root / "revoked").stat().st_mode & 0o777 == 0o700


def test_signatures_are_checked_once_per_process(
    keys: MasterKeys, revocations: Revocations, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sign_grant(_grant(["care.footer"]), keys)
    calls: list[bytes] = []
    verify = type(keys).verify

    def counting(self: MasterKeys, data: bytes, signature: bytes, version: int = 1) -> bool:
        calls.append(data)
        return verify(self, data, signature, version)

    monkeypatch.setattr(type(keys), "verify", counting)
    forget_verified()
    for _ in range(5):
        authorise(token, keys, revocations, ["care.footer"])
    assert len(calls) == 1


def test_peek_reads_claims_without_trusting_them(keys: MasterKeys) -> None:
    grant = _grant(["a.footer", "a.c1"])
    assert peek(sign_grant(grant, keys)) == grant
    with pytest.raises(GrantInvalid, match="claims cannot be read"):
        peek("tre-grant.1.bm90IGpzb24.sig")
    with pytest.raises(GrantInvalid, match="is malformed"):
        Revocations("/nowhere").reason("../../etc/passwd")
