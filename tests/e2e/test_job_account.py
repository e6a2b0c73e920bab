"""The job account (issue 25): the TRE's service account submits jobs as their job users
through sudo, under a rule that allows that and nothing else. Real sudo, real Slurm, a
real unprivileged service account (made for the test)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from slurm.sudo_rule import for_this_host, render
from tre.errors import InputError

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
ACCOUNT = "tre-svc-test"
RULE = Path("/etc/sudoers.d/tre-test")


@pytest.fixture
def service_account() -> Iterator[str]:
    """An unprivileged account with the shipped rule installed for it, as a site would."""
    if os.geteuid() != 0 or shutil.which("sudo") is None:
        if os.environ.get("TRE_REQUIRE_ALL") == "1":
            pytest.fail("the job account tests need root and sudo (make test installs sudo)")
        pytest.skip("needs root and sudo")
    if subprocess.run(["id", "-u", ACCOUNT], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ACCOUNT],
            check=True,
        )
    staged = RULE.with_name("tre-test.new")  # sudo ignores names with a dot
    staged.write_text(for_this_host(ACCOUNT))
    staged.chmod(0o440)
    checked = subprocess.run(["visudo", "-cf", str(staged)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    staged.replace(RULE)
    try:
        yield ACCOUNT
    finally:
        RULE.unlink(missing_ok=True)


def _as(account: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={account}", f"--regid={account}", "--init-groups", *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


def test_the_service_account_submits_as_a_job_user_and_nothing_else(service_account):
    test_only = ["sbatch", "--test-only", "--partition=debug", "--chdir=/", "--wrap=true"]
    allowed = _as(service_account, "sudo", "-n", "-u", "tre-job-0", "--", *test_only)
    assert allowed.returncode == 0, allowed.stderr
    assert "to start at" in allowed.stderr  # Slurm's answer, to the job user
    cancelled = _as(service_account, "sudo", "-n", "-u", "tre-job-1", "--", "scancel", "999999")
    assert not cancelled.stderr.startswith("sudo:"), cancelled.stderr  # sudo let it through
    for user, command in (
        ("root", test_only),  # not root
        ("tre-keys", test_only),  # not the key service's user
        ("tre-code-0", test_only),  # not researcher code's
        ("tre-job-0", ["/bin/sh", "-c", "id"]),  # not a shell as a job user
        ("tre-job-0", ["srun", "true"]),  # not another Slurm command
    ):
        refused = _as(service_account, "sudo", "-n", "-u", user, "--", *command)
        assert refused.returncode != 0 and refused.stderr.startswith("sudo:"), (user, command)


def test_the_rule_refuses_names_that_would_widen_it():
    for account, fix in (
        ("ALL", "user name"),
        ("tre ALL=(ALL) ALL", "user name"),
        ("root", "service account"),
        ("tre-job-0", "service account"),
    ):
        with pytest.raises(InputError) as raised:
            render(account, ["tre-job-0"], "/usr/bin/sbatch", "/usr/bin/scancel")
        assert fix in raised.value.message or fix in (raised.value.fix or ""), account
    with pytest.raises(InputError):
        render("tre", ["root"], "/usr/bin/sbatch", "/usr/bin/scancel")
