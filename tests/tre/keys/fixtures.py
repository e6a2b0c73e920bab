"""The keys' fixtures: a private key store in tmp_path, its settings, grants signed
with it, a SoftHSM token of the test's own, a count of unwraps, and no cached keys
between tests. Two conftests take them all: tests/tre/keys/ and tests/tre/secured/
(whose tests ingest and read with keys; `tre.keys.kms` is tested there, through
encrypted datasets, in test_kms.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.tre.keys.softhsm import start_token
from tre.keys import grants, keysystems, kms
from tre.keys.grants import make_grant, sign_grant
from tre.keys.keysystems import open_master_keys
from tre.keys.masterkeys import KmsSettings, MasterKeys

# Every fixture (and the Grant type), so `import *` in a conftest hands them all on,
# the autouse one too.
__all__ = [
    "Grant",
    "_fresh_kms_caches",
    "grant_token",
    "keys_root",
    "local_kms",
    "softhsm",
    "unwrap_calls",
]


def _forget() -> None:
    kms.clear_caches()
    grants.forget_verified()
    keysystems.forget_opened()


@pytest.fixture(autouse=True)
def _fresh_kms_caches() -> Iterator[None]:
    # Each test starts with no cached KMS clients, KEKs, decryption properties,
    # verified grants or open key stores.
    _forget()
    yield
    _forget()


@pytest.fixture
def keys_root(tmp_path: Path) -> Path:
    """TRE_HOME/keys, private as `Home.create` makes it."""
    keys = tmp_path / "home" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    return keys


@pytest.fixture
def local_kms(keys_root: Path) -> KmsSettings:
    """The local key store's settings."""
    return KmsSettings.local(keys_root)


Grant = Callable[..., str]


@pytest.fixture
def grant_token(local_kms: KmsSettings) -> Grant:
    """Sign a grant for `columns` of a dataset (as the service does for a job)."""

    def make(
        dataset: str,
        columns: Sequence[str],
        *,
        lifetime: float = 3600,
        project: str = "test-project",
        job: int = 1,
        settings: KmsSettings | None = None,
        not_after: float | None = None,
    ) -> str:
        grant = make_grant(
            holder=f"job {job}",
            keys=kms.keys_for(dataset, columns),
            lifetime=lifetime,
            project=project,
            job=job,
            not_after=not_after,
        )
        return sign_grant(grant, open_master_keys(settings or local_kms))

    return make


@pytest.fixture
def softhsm(tmp_path: Path, keys_root: Path) -> KmsSettings:
    """KmsSettings using a SoftHSM token of this test's own."""
    token = start_token(tmp_path / "softhsm")
    return KmsSettings(
        kind="pkcs11",
        keys_root=str(keys_root),
        pkcs11_module=token.module,
        pkcs11_token=token.label,
        pkcs11_pin_file=str(token.pin_file),
    )


@pytest.fixture
def unwrap_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The master key id of every unwrap (KMS call) made in this process from now on."""
    calls: list[str] = []
    unwrap = MasterKeys.unwrap

    def counting(self: MasterKeys, key_id: str, wrapped: str) -> bytes:
        calls.append(key_id)
        return unwrap(self, key_id, wrapped)

    monkeypatch.setattr(MasterKeys, "unwrap", counting)
    return calls
