"""`tre --version`, `tre --help`, `tre status` and `tre status JOB` answer at once (issue
27): they load none of the libraries that take a second or more to import. Each command
runs in a fresh interpreter, which then says which of them it imported. Timings are measured in
bench/cli_start.py, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from slurm.backends import BACKENDS
from slurm.profiles import available
from tre.cli import cluster, keys, setup
from tre.keys.masterkeys import KINDS
from tre.service.people import init_home

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("polars", "pyarrow", "dask", "distributed", "fastapi")

# `tre ARGS...` as the console script runs it; then the heavy packages in sys.modules
# go to the file named first, as JSON.
PROBE = f"""
import json, sys
from tre.cli.main import main
code = main(sys.argv[2:])
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
with open(sys.argv[1], "w") as out:
    json.dump({{"code": code, "loaded": loaded}}, out)
"""


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new demo home with ada, its first admin: nothing else is needed to list jobs.
    Unsandboxed, so no key service starts (Session.open imports the same modules)."""
    root = tmp_path_factory.mktemp("imports") / "home"
    init_home(root, admin="ada", full_name="Ada Admin", demo=True, isolation="none")
    return root


def run_tre(args: list[str], work: Path) -> tuple[int, list[str], str]:
    """Run `tre ARGS` in a fresh interpreter: its exit code, the heavy packages it
    imported, and what it printed."""
    result = work / "probe.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TRE_HOME", "TRE_SERVER", "TRE_TOKEN", "TRE_TOKEN_FILE")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["XDG_CONFIG_HOME"] = str(work)  # no client.yaml of the person running the tests
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(result), *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(result.read_text())
    return probe["code"], probe["loaded"], done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--version"], "tre, version"),
        (["--help"], "Usage: tre"),
        (["status"], "submitter"),
        (["status", "--all"], "submitter"),
    ],
)
def test_the_first_commands_load_no_heavy_library(args, says, demo_home, tmp_path):
    home = ["--home", str(demo_home), "--as", "ada"] if args[0] == "status" else []
    code, loaded, out = run_tre(home + args, tmp_path)
    assert code == 0, out
    assert says in out
    assert loaded == [], f"tre {' '.join(args)} imported {', '.join(loaded)}"


def test_the_cli_s_copies_of_choices_agree_with_their_sources():
    # Written out in tre.cli so that listing the commands loads neither module.
    assert setup.BACKENDS == BACKENDS
    assert keys.KMS_KINDS == KINDS


@pytest.mark.parametrize(
    ("command", "option", "words"),
    [
        (setup.init, "slurm_profile", "Site profile for Slurm backends ({}, or a file)."),
        (cluster.check_cmd, "profile_ref", "Site profile ({}, or a file); default: the home's."),
    ],
)
def test_help_names_the_packaged_site_profiles(command, option, words):
    # Looked up when the help is shown, not when the CLI is imported.
    param = next(p for p in command.params if p.name == option)
    record = param.get_help_record(click.Context(command))
    assert record is not None
    assert record[1] == words.format(", ".join(available()))


def test_one_job_in_detail_with_its_reviews_loads_no_heavy_library(session_as, home, tmp_path):
    """`tre status JOB` of a reviewed job: its outputs, the checkers' comments and what
    to do next, read without the engines (the read-only modules: job_progress,
    request_view). Only a running job's backend is asked, which loads them."""
    from tests.tre.factories import rejected_at_review

    job = rejected_at_review(session_as("rita"), session_as("carl"), session_as("chen"))
    code, loaded, out = run_tre(
        ["--home", str(home), "--as", "rita", "status", str(job.id)], tmp_path
    )
    assert code == 0, out
    assert "carl rejected: small cells" in out and "next:" in out
    assert loaded == [], f"tre status {job.id} imported {', '.join(loaded)}"
