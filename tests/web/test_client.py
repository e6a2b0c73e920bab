"""The CLI in client mode (`tre --server URL ...`) against a real uvicorn on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES, PROJECT, Result
from tests.web.conftest import FAILING, PASSING, SMALL, ServerThread, World, free_port
from tre.cli.main import main as tre_main

pytestmark = pytest.mark.slow


@pytest.fixture
def remote(served: ServerThread, world: World, capsys, monkeypatch, tmp_path: Path):
    """Run `tre --server URL ARGS...` in-process as `who` (their token in TRE_TOKEN)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("TRE_SERVER", "TRE_TOKEN", "TRE_TOKEN_FILE", "TRE_HOME"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: object, who: str | None, server: str | None = served.url) -> Result:
        if who is not None:
            monkeypatch.setenv("TRE_TOKEN", world.tokens[who])
        else:
            monkeypatch.delenv("TRE_TOKEN", raising=False)
        argv = (["--server", server] if server else []) + [str(a) for a in args]
        capsys.readouterr()
        code = tre_main(argv)
        captured = capsys.readouterr()
        for token in world.tokens.values():
            assert token not in captured.out + captured.err, "a token was printed"
        return Result(code, captured.out, captured.err)

    return run


def test_a_researcher_submits_follows_and_cancels_through_the_server(remote, world: World):
    submitted = remote("submit", EXAMPLES / "health_by_area.yaml", who="rita")
    assert submitted.code == 0, submitted.err
    assert "queued" in submitted.out
    job = submitted.out.split()[1]
    listing = remote("status", who="rita")
    assert f"│ {job} " in listing.out and "queued" in listing.out
    detail = remote("status", job, who="rita")
    assert "state:     queued" in detail.out and "project:   lcr-health-fire" in detail.out
    assert "has no logs yet (it is queued)" in remote("logs", job, who="rita").out
    assert "is cancelled" in remote("cancel", job, who="rita").out


def test_python_steps_travel_with_their_code(remote, world: World):
    submitted = remote("submit", EXAMPLES / "early_help" / "summary.yaml", who="sam")
    assert submitted.code == 0, submitted.err
    job = int(submitted.out.split()[1])
    code = world.home / "jobs" / f"{job:06d}" / "code" / "early_help_summary.pkl"
    assert code.stat().st_size > 0


def test_checkers_review_and_release_and_the_researcher_fetches(remote, world: World, tmp_path):
    job = world.awaiting
    queue = remote("review", "list", who="sam")
    assert queue.code == 0, queue.err
    assert "(yours: you cannot review it)" in queue.out
    shown = remote("review", "show", job, who="carl")
    assert f"{FAILING} (table, step {FAILING}): " in shown.out
    assert f"/review/{job}" in shown.out
    for checker in ("carl", "chen"):
        ok = remote("review", "approve", job, "--output", PASSING, "-m", "safe", who=checker)
        assert ok.code == 0, ok.err
        no = remote(
            "review",
            "reject",
            job,
            "--output",
            SMALL,
            "--output",
            FAILING,
            "-m",
            "no",
            who=checker,
        )
        assert no.code == 0, no.err
    released = remote("review", "release", job, who="chen")
    assert released.code == 0 and "partially_released" in released.out
    assert str(job) in remote("outputs", who="rita").out
    into = tmp_path / "mine"
    fetched = remote("outputs", job, "--to", into, who="rita")
    assert fetched.code == 0, fetched.err
    table = into / PASSING / f"{PASSING}.csv"
    assert table.read_text().startswith("local_authority,age_band,count")
    assert (into / f"manifest-{job}.json").exists()
    assert not (into / SMALL).exists() and not (into / FAILING).exists()
    again = remote("outputs", job, "--to", into, who="rita")
    assert again.code == 2 and "already has" in again.err


def test_refusals_come_back_with_their_reasons_and_exit_codes(remote, world: World):
    own = remote("review", "approve", world.awaiting, "-m", "mine", who="rita")
    assert own.code == 4
    assert "you cannot review job" in own.err and "needs the checker role" in own.err
    outsider = remote("status", world.awaiting, who="olga")
    assert outsider.code == 4 and "of which you are not a member" in outsider.err
    missing = remote("logs", 999, who="carl")
    assert missing.code == 3 and "there is no job 999" in missing.err


def test_the_token_file_must_be_private(remote, world: World, tmp_path, monkeypatch):
    token_file = tmp_path / "config" / "tre" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(world.tokens["rita"] + "\n")
    os.chmod(token_file, 0o644)
    exposed = remote("status", who=None)
    assert exposed.code == 4
    assert "can be read by other users (mode 644)" in exposed.err
    assert f"chmod 600 {token_file}" in exposed.err
    os.chmod(token_file, 0o600)
    assert remote("status", who=None).code == 0
    token_file.unlink()
    missing = remote("status", who=None)
    assert missing.code == 2 and "no API token" in missing.err


def test_a_bad_token_or_no_server_is_explained(remote, tmp_path):
    token_file = tmp_path / "config" / "tre" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("tre_0123456789ab_" + "Q" * 43)
    os.chmod(token_file, 0o600)
    bad = remote("status", who=None)
    assert bad.code == 4 and "does not know that API token" in bad.err
    nobody = remote("status", who="rita", server=f"http://127.0.0.1:{free_port()}")
    assert nobody.code == 6 and "cannot reach the tre server" in nobody.err


def test_home_only_commands_and_as_are_refused_through_a_server(remote, world: World):
    # Tokens are credentials and datasets are the host's files: they stay on the TRE host.
    for command in (("admin", "token", "rita"), ("admin", "tokens"), ("dataset", "list")):
        refused = remote(*command, who="ada")
        assert refused.code == 2, command
        assert f"'tre {' '.join(command[:2])}' works on a TRE home, not through --server" in (
            refused.err
        )
        assert "run it on the TRE host without --server" in refused.err
    assert not (world.home / "rita.token").exists()
    acting = remote("--as", "ada", "status", who="rita")
    assert acting.code == 2 and "--as does not work with a server" in acting.err


def test_the_server_can_come_from_the_client_configuration(remote, served, world, tmp_path):
    config = tmp_path / "config" / "tre"
    config.mkdir(parents=True)
    token_file = tmp_path / "rita.token"
    token_file.write_text(world.tokens["rita"])
    os.chmod(token_file, 0o600)
    (config / "client.yaml").write_text(
        yaml.safe_dump({"server": served.url, "token_file": str(token_file)})
    )
    listing = remote("status", who=None, server=None)
    assert listing.code == 0, listing.err
    assert "Residents and COPD" in listing.out


# -- projects and people through the server -------------------------------------------------

NEW = "lcr-fire-followup"


def write_yaml(path: Path, source: Path, **changes: object) -> Path:
    """A copy of the YAML file `source` with some fields changed."""
    path.write_text(yaml.safe_dump({**yaml.safe_load(source.read_text()), **changes}))
    return path


def test_a_project_requested_and_approved_through_the_server_takes_jobs(
    remote, world: World, tmp_path: Path
):
    request = write_yaml(tmp_path / "project.yaml", EXAMPLES / "project.yaml", name=NEW)
    job = write_yaml(tmp_path / "job.yaml", EXAMPLES / "health_by_area.yaml", project=NEW)
    requested = remote("project", "request", request, who="rita")
    assert requested.code == 0, requested.err
    assert f"Requested project {NEW}; an admin other than you must approve it" in requested.out
    early = remote("submit", job, who="rita")
    assert early.code == 4 and f"project '{NEW}' is requested, not approved" in early.err
    own = remote("project", "approve", NEW, who="rita")
    assert own.code == 4 and f"you cannot approve project '{NEW}'" in own.err
    assert "approving a project needs the admin role" in own.err
    approved = remote("project", "approve", NEW, who="ada")
    assert approved.code == 0, approved.err
    assert f"Project {NEW} is approved until 2027-12-31" in approved.out
    assert "approved by ada" in remote("project", "show", NEW, who="sam").out
    submitted = remote("submit", job, who="rita")
    assert submitted.code == 0, submitted.err
    assert "queued" in submitted.out
    job_id = submitted.out.split()[1]
    assert f"project:   {NEW}" in remote("status", job_id, who="rita").out


def test_an_admin_cannot_approve_their_own_request_through_the_server(
    remote, world: World, tmp_path: Path
):
    request = write_yaml(tmp_path / "project.yaml", EXAMPLES / "project.yaml", name=NEW)
    assert remote("project", "request", request, who="ada").code == 0
    refused = remote("project", "approve", NEW, who="ada")
    assert refused.code == 4
    assert "an admin may not approve a project they requested themselves" in refused.err
    assert "ask another admin, who did not request the project" in refused.err
    assert "(requested, expires" in remote("project", "show", NEW, who="ada").out


def test_admins_register_update_and_suspend_through_the_server(remote, world: World):
    registered = remote(
        "admin",
        "register",
        "nina",
        "--full-name",
        "Nina Newcomer",
        "--role",
        "researcher",
        "--accredited-until",
        "2099-01-01",
        who="ada",
    )
    assert registered.code == 0, registered.err
    assert "Registered nina as researcher" in registered.out
    assert "Nina Newcomer" in remote("admin", "people", who="ada").out
    by_researcher = remote(
        "admin", "register", "ned", "--full-name", "Ned", "--role", "checker", who="rita"
    )
    assert by_researcher.code == 4 and "you cannot register people" in by_researcher.err
    updated = remote("admin", "update", "carl", "--deactivate", who="ada")
    assert updated.code == 0, updated.err
    assert "Updated carl: roles checker, accredited until -, deactivated" in updated.out
    assert "deactivated" in remote("review", "list", who="carl").err
    suspended = remote("project", "suspend", PROJECT, "--reason", "ethics review", who="ada")
    assert suspended.code == 0, suspended.err
    assert f"Project {PROJECT} is suspended" in suspended.out
    refused = remote("submit", EXAMPLES / "health_by_area.yaml", who="rita")
    assert refused.code == 4 and f"project '{PROJECT}' is suspended" in refused.err


def test_listings_through_the_server_read_as_on_the_tre_host(remote, world: World):
    local = ("--home", world.home, "--as", "ada")
    for command in (("project", "list"), ("project", "show", PROJECT), ("admin", "people")):
        there = remote(*command, who="ada")
        here = remote(*local, *command, who=None, server=None)
        assert there.code == here.code == 0, there.err + here.err
        assert there.out == here.out, command
        assert (PROJECT if command[0] == "project" else "Rita") in there.out
