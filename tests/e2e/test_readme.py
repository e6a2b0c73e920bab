"""The README, run as a new user would type it (issue 27): its notebook example, and
every command of its ```sh blocks, in order, on a home like the demo's.

The commands are read from the README itself, so a command edited there is the command
tested. The only changes from what a reader types: `--as NAME` after `tre` (the person
each tour acts as, as the README says), and a folder laid out like a checkout after
`make demo` as the working folder, with `TRE_HOME=.demo/home` as the README sets it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, Result, stop_key_service
from tre.cli.main import main as tre_main
from tre.demo.walkthrough import SUBMISSIONS  # the demo's jobs: the tours' ids follow them

pytestmark = pytest.mark.slow
README = ROOT / "README.md"

#: Who each section's commands act as (the README: "ada in the administrator's tour...").
ACTING = {
    "TRE administrator": "ada",
    "Researcher": "rita",
    "Output checker": "carl",
    "From your own machine": "ada",
}

#: README commands this test does not run, each with why and what tests it instead.
#: A command neither here nor runnable fails the test; so does an entry the README lost.
NOT_RUN = {
    "make demo": "installs what it needs, then runs the walkthrough: tests/e2e/test_demo.py "
    "runs that walkthrough as the Makefile does, and this test runs the tours on a home "
    "like the one it leaves (conftest's template_home)",
    "make test": "is CI itself",
    "tre serve --with-dispatcher": "serves until stopped; tests/web/test_serve.py runs "
    "`tre serve --with-dispatcher` and a job through it",
    "export TRE_SERVER=https://tre.example.ac.uk": "an example address; "
    "tests/web/test_client.py runs the CLI through a real server",
    "export TRE_TOKEN_FILE=~/rita.token": "on rita's machine; tests/web/test_client.py "
    "(test_the_token_file_must_be_private)",
    "tre submit job.yaml && tre status": "through the server; tests/web/test_client.py "
    "(test_a_researcher_submits_follows_and_cancels_through_the_server)",
    "tre project request project.yaml": "through the server; tests/web/test_client.py "
    "(test_a_project_requested_and_approved_through_the_server_takes_jobs)",
    "tre init --backend slurm-runner --slurm-profile /etc/tre/site.yaml": "a site's own "
    "profile; tests/e2e/test_slurm.py runs jobs in homes made with a Slurm backend",
    "tre cluster check": "needs a site's cluster; tests/e2e/test_slurm.py "
    "(test_cluster_check_reports_what_works_and_what_does_not)",
    "make demo BACKEND=slurm": "the demo on the test cluster (minutes); "
    "tests/e2e/test_cluster_nodes.py runs jobs on its three compute nodes",
}


@dataclass
class Command:
    section: str
    text: str
    line: int


def readme_commands(text: str) -> list[Command]:
    """Every command line of the README's ```sh blocks, without its `# comment`, a
    trailing backslash joining it to the next line, with the heading it is under."""
    found: list[Command] = []
    section, fence, pending = "", None, ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif fence is None and line.startswith("#"):
            section = line.lstrip("#").strip()
        elif fence == "sh":
            code = pending + _without_comment(line)
            if code.endswith("\\"):
                pending = code[:-1]
                continue
            pending = ""
            if code.strip():
                found.append(Command(section, code.strip(), number))
    return found


def _without_comment(line: str) -> str:
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _needs_a_shell(command: str) -> bool:
    """Redirection, substitution, `&&`, `~`...: outside quotes, only a shell does it."""
    return bool(re.search(r"[$<>|&;`~*]", re.sub(r"\"[^\"]*\"|'[^']*'", "", command)))


class Reader:
    """Types README commands in `checkout`: in-process like tests/conftest.py's cli_for
    (a subprocess per command would cost a second or two each), or through bash where
    the line needs a shell, which also proves the `tre` entry point."""

    def __init__(self, checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.checkout, self.capsys = checkout, capsys

    def type(self, command: str, who: str | None) -> Result:
        """Run `command` as typed, acting as `who` unless the line has its own --as."""
        if who and command.startswith("tre ") and " --as " not in command:
            command = f"tre --as {who} {command[4:]}"
        if _needs_a_shell(command) or not command.startswith("tre "):
            assert not command.startswith("export "), "teach this test what the export means"
            bin_folder = Path(sys.executable).parent  # the venv the README activates
            env = {**os.environ, "PATH": f"{bin_folder}:{os.environ['PATH']}"}
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=self.checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            return Result(done.returncode, done.stdout, done.stderr)
        self.capsys.readouterr()
        code = tre_main(shlex.split(command)[1:])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


def stand_in_for_the_demo_s_jobs(reader: Reader) -> None:
    """Jobs 1 to 6, as the demo's, submitted by rita; all but the refused one cancelled."""
    for number, (spec, expect) in enumerate(SUBMISSIONS, 1):
        submitted = reader.type(f"tre submit {shlex.quote(str(EXAMPLES / spec))}", "rita")
        assert submitted.code == expect, submitted
        if expect == 0:  # cancelled, not run (a minute): the tours only list them
            assert reader.type(f"tre cancel {number}", "rita").code == 0, submitted


@pytest.fixture
def checkout(tmp_path: Path, template_home: Path, sources: dict[str, Path], monkeypatch):
    """A folder like a checkout after `make demo`: the repo's jobs/ and dataset
    descriptors, .demo/sources, and .demo/home (a copy of the template home: the demo's
    people, datasets and approved project), as the working folder with TRE_HOME set."""
    assert "export TRE_HOME=.demo/home" in README.read_text()  # what this folder is laid out for
    root = tmp_path / "checkout"
    (root / "tre" / "demo").mkdir(parents=True)
    (root / "jobs").symlink_to(ROOT / "jobs")
    (root / "tre" / "demo" / "datasets").symlink_to(ROOT / "tre" / "demo" / "datasets")
    (root / ".demo").mkdir()
    (root / ".demo" / "sources").symlink_to(sources["residents"].parent)
    home = root / ".demo" / "home"
    shutil.copytree(template_home, home, ignore=shutil.ignore_patterns("pid", "lock"))
    monkeypatch.chdir(root)
    monkeypatch.setenv("TRE_HOME", ".demo/home")
    yield root
    for made in (home, root / "my-tre"):
        stop_key_service(made)


def test_the_readme_tours_run_as_typed_in_order(checkout: Path, capsys):
    commands = readme_commands(README.read_text())
    lost = set(NOT_RUN) - {c.text for c in commands}
    assert not lost, f"NOT_RUN names commands the README no longer has: {sorted(lost)}"
    reader = Reader(checkout, capsys)
    stand_in_for_the_demo_s_jobs(reader)

    said: dict[str, str] = {}
    for command in commands:
        if command.text in NOT_RUN:
            continue
        result = reader.type(command.text, ACTING.get(command.section))
        assert result.code == 0, f"README line {command.line}: {command.text}\n{result}"
        said[command.text] = result.out

    def output_of(start: str) -> str:
        (text,) = [out for command, out in said.items() if command.startswith(start)]
        return text

    # The administrator's tour.
    assert (checkout / "my-tre" / "tre.yaml").is_file()
    assert "audit log intact" in output_of("tre audit verify")
    assert len(list(checkout.glob(".demo/backup-*/backup.json"))) == 1
    # The researcher's: jobs 7 and 8, as the README numbers them.
    assert "steps" in json.loads((checkout / "job.schema.json").read_text())["properties"]
    assert "Job 7 queued" in output_of("tre submit jobs/examples/health_by_area.yaml")
    assert "Job 8 is cancelled" in output_of("tre cancel 8")
    assert "awaiting_review" in output_of("tre status 7")
    assert "awaiting_review" in output_of("tre logs 7")  # tre's status lines, never data
    # The checkers', then the researcher sees their decisions and fetches the files.
    decided = output_of("tre --as rita status 7")
    assert "partially_released" in decided
    assert "carl approved: All cells >= 10; no dominance" in decided
    assert "chen rejected: Too much suppressed to use" in decided
    results = checkout / "results"
    fetched = {str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()}
    assert {"manifest-7.json", "residents_by_area/residents_by_area.csv"} <= fetched
    assert not [name for name in fetched if "copd" in name]
    assert (checkout / "rita.token").stat().st_mode & 0o777 == 0o600


def _notebook_example() -> str:
    text = README.read_text()
    after = text.split("The same can be done from a notebook:", 1)[1]
    found = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert found, "the README's notebook example is missing"
    return found.group(1)


def test_the_readme_notebook_example_runs_as_written(home: Path, monkeypatch):
    monkeypatch.setenv("TRE_HOME", str(home))
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            # Our own README, as a reader would paste it into a notebook.
            exec(compile(_notebook_example(), "README.md", "exec"), {"__name__": "__main__"})
    finally:
        stop_key_service(home)
    assert printed.getvalue().split()[0] == "awaiting_review", printed.getvalue()
