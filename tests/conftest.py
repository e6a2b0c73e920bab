"""Shared fixtures: a TRE home built through the real service layer, copied per test.

Building the template once (people, three ingested datasets, an approved project) and
copying it keeps each test isolated without paying for ingest every time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import yaml

from tre.cli.main import main as tre_main
from tre.demo.synth import descriptor_path, generate
from tre.errors import TreError
from tre.home import Home
from tre.keyservice import process as keyservice
from tre.service import datasets, people, projects
from tre.service.preflight import check_can_start, check_host
from tre.service.session import Session

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "jobs" / "examples"
PROJECT = "lcr-health-fire"


REQUIRE_ALL = "TRE_REQUIRE_ALL"  # set by `make test`: a missing Slurm fails, never skips


def slurm_ready() -> bool:
    """A Slurm controller answers and has a node that takes jobs."""
    if shutil.which("sinfo") is None:
        return False
    try:
        states = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under TRE_REQUIRE_ALL=1, prove once that a sandboxed job can start here, and end
    the run at once if not: otherwise every test that runs a job fails only after
    waiting for it (docs/operations.md, 'When jobs do not start')."""
    if os.environ.get(REQUIRE_ALL) != "1" or session.config.option.collectonly:
        return
    root = Path(tempfile.mkdtemp(prefix="tre-preflight-"))
    try:
        check_host()  # before the home's key service, which runs from the same runtime
        people.init_home(root / "home", admin="ada", full_name="Ada Admin", demo=True)
        opened = Session.open(root / "home", "ada")
        try:
            check_can_start(opened)
        finally:
            opened.close()
    except TreError as exc:
        pytest.exit(
            "jobs cannot start on this machine, so every test that runs one would fail "
            f"after waiting for it:\n{exc.render()}",
            returncode=3,
        )
    finally:
        stop_key_service(root / "home")
        shutil.rmtree(root, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In one lane of `make test` (tests/two_lanes.py), keep that lane's tests only."""
    from tests.two_lanes import LANE, in_slurm_lane

    lane = os.environ.get(LANE)
    if not lane:
        return
    keep, drop = [], []
    for item in items:
        markers = {m.name for m in item.iter_markers()}
        (keep if in_slurm_lane(item.nodeid, markers) == (lane == "slurm") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm") and not slurm_ready():
        message = "no Slurm cluster is running: start one with 'bash slurm/devcluster/start.sh'"
        if os.environ.get(REQUIRE_ALL) == "1":
            pytest.fail(message + f" ({REQUIRE_ALL}=1 turns this skip into a failure)")
        pytest.skip(message)
    if item.get_closest_marker("browser") and not Path("/usr/bin/chromium").exists():
        message = "no /usr/bin/chromium for the browser tests: apt-get install chromium"
        if os.environ.get(REQUIRE_ALL) == "1":
            pytest.fail(message + f" ({REQUIRE_ALL}=1 turns this skip into a failure)")
        pytest.skip(message)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic LCR source files (plain Parquet), 10,000 residents."""
    return generate(tmp_path_factory.mktemp("sources"), rows=10_000, seed=11)


def build_home(
    root: Path, sources: dict[str, Path], backend: str = "local", profile: str | None = None
) -> Path:
    """A demo home: ada+bob admins (bob confirmed by ada), rita+sam researchers,
    carl+chen checkers, three datasets, and project lcr-health-fire (requested by rita,
    approved by bob)."""
    home = root / "home"
    people.init_home(
        home, admin="ada", full_name="Ada Admin", demo=True, backend=backend, slurm_profile=profile
    )
    s = Session.open(home, "ada")
    try:
        people.register_person(s, name="bob", full_name="Bob", roles=["admin"])
        people.confirm_admin(s, "bob")  # the home's second admin: ada may confirm them
        for name in ("rita", "sam", "olga"):
            people.register_person(
                s,
                name=name,
                full_name=name.title(),
                roles=["researcher"],
                accredited_until=date(2099, 1, 1),
            )
        for name in ("carl", "chen"):
            people.register_person(s, name=name, full_name=name.title(), roles=["checker"])
        for name, path in sources.items():
            datasets.ingest_dataset(
                s, name, path, descriptor=descriptor_path(name), rows_per_group=500
            )
        s.actor = "rita"
        projects.request_project(s, yaml.safe_load((EXAMPLES / "project.yaml").read_text()))
        s.actor = "bob"
        projects.approve_project(s, PROJECT)
    finally:
        s.close()
    return home


def stop_key_service(root: Path) -> None:
    """Stop the key service of the home at `root`, if it runs (tests leave none behind;
    a test may have broken the home, so only its folder is needed)."""
    keyservice.stop(Home(root.absolute(), None))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory, sources: dict[str, Path]):
    root = build_home(tmp_path_factory.mktemp("template"), sources)
    stop_key_service(root)  # each copy starts its own
    yield root
    stop_key_service(root)


@pytest.fixture
def home(tmp_path: Path, template_home: Path):
    """A fresh copy of the template home for one test."""
    target = tmp_path / "home"
    shutil.copytree(template_home, target, ignore=shutil.ignore_patterns("pid", "lock"))
    yield target
    stop_key_service(target)


@pytest.fixture
def session_as(home: Path):
    """Open sessions on the test home as named people; closed at the end."""
    opened: list[Session] = []

    def open_as(name: str) -> Session:
        s = Session.open(home, name)
        opened.append(s)
        return s

    yield open_as
    for s in opened:
        s.close()


def cli_for(home: Path, capsys: pytest.CaptureFixture[str]):
    """A function running `tre --home HOME [--as WHO] ARGS...` in-process."""

    def run(*args: str, who: str | None = None) -> Result:
        argv = ["--home", str(home)] + (["--as", who] if who else []) + [str(a) for a in args]
        capsys.readouterr()
        code = tre_main(argv)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]):
    """Run `tre --home HOME [--as WHO] ARGS...` in-process; returns code, stdout, stderr."""
    return cli_for(home, capsys)


def write_spec(folder: Path, spec: dict, name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
