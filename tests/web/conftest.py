"""Fixtures for the service: a home with real jobs in every review state, a token per
person, the app in-process, and a real uvicorn on a free loopback port.

The template home is built once through the service layer (as tests/conftest.py builds
its own) and copied per test:

- job A: rita's, awaiting review: one table passes, one has small cells (protected by
  suppression where the disclosure policy suppresses), and one (a maximum) always fails;
- job B: sam's, awaiting review; sam is a researcher in the project AND a checker;
- job C: rita's, partially released (carl and chen approved the passing table and
  rejected the other two).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI

from jobs.spec import parse_spec
from tests.conftest import EXAMPLES, build_home
from tre.models import Decision
from tre.service import jobs, people, review, tokens
from tre.service.dispatcher import Dispatcher
from tre.service.session import Session
from tre.store import repo
from tre.web import create_app

with warnings.catch_warnings():
    # Starlette asks for httpx2 instead of httpx here; the client works the same.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PEOPLE = ("rita", "sam", "olga", "carl", "chen", "ada")
PASSING, SMALL, FAILING = "residents_by_area", "copd_by_deprivation", "max_visits"
_EXAMPLE = yaml.safe_load((EXAMPLES / "health_by_area.yaml").read_text())
#: The jobs' spec: the health_by_area example, described, plus a table of maxima, which
#: the rules never release automatically (so it fails whatever the protection policy).
SPEC = {
    **_EXAMPLE,
    "description": "How COPD and age vary across the six authorities, for fire safety visits.",
    "datasets": {"residents": [*_EXAMPLE["datasets"]["residents"], "gp_visits_last_year"]},
    "steps": [
        *_EXAMPLE["steps"],
        {
            "kind": "table",
            "name": FAILING,
            "description": "The most GP visits anyone had last year, by local authority.",
            "dataset": "residents",
            "rows": ["local_authority"],
            "statistic": "max",
            "value": "gp_visits_last_year",
        },
    ],
}


@dataclass(frozen=True)
class World:
    """A served home: its path, a token per person, and the jobs by their role."""

    home: Path
    tokens: dict[str, str]
    awaiting: int  # job A, rita's
    own: int  # job B, sam's (sam is also a checker)
    released: int  # job C, rita's, partially released

    def bearer(self, who: str) -> dict[str, str]:
        """The Authorization header of `who`."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def build_world(root: Path, sources: dict[str, Path]) -> World:
    """The template world (see the module docstring), built through the service layer."""
    home = build_home(root, sources)
    s = Session.open(home, "ada")
    try:
        people.update_person(s, "sam", roles=["researcher", "checker"])
        issued = {who: tokens.issue_token(s, who)[1] for who in PEOPLE}
        spec = parse_spec(SPEC)
        s.actor = "rita"
        released = jobs.submit_job(s, spec).id
        awaiting = jobs.submit_job(s, spec).id
        s.actor = "sam"
        own = jobs.submit_job(s, spec).id
        s.actor = "ada"
        Dispatcher(s, max_running=3).run(once=True)
        for checker in ("carl", "chen"):
            s.actor = checker
            review.vote(s, released, [PASSING], Decision.APPROVE, "all cells pass")
            review.vote(s, released, [SMALL, FAILING], Decision.REJECT, "not safe")
        review.release(s, released)
    finally:
        s.close()
    return World(home, issued, awaiting=awaiting, own=own, released=released)


@pytest.fixture(scope="session")
def template_world(tmp_path_factory: pytest.TempPathFactory, sources: dict[str, Path]) -> World:
    return build_world(tmp_path_factory.mktemp("web-template"), sources)


@pytest.fixture
def world(tmp_path: Path, template_world: World) -> World:
    """A fresh copy of the template world for one test."""
    target = tmp_path / "home"
    shutil.copytree(template_world.home, target)
    return World(
        target,
        template_world.tokens,
        template_world.awaiting,
        template_world.own,
        template_world.released,
    )


@pytest.fixture
def app(world: World) -> FastAPI:
    return create_app(world.home)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app in-process (real SQLite, real files), without following redirects."""
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def report_of(world: World, job: int) -> dict:
    """The disclosure report of a job, as stored."""
    path = world.home / "jobs" / f"{job:06d}" / "report" / "report.json"
    return dict(json.loads(path.read_text()))


def status_of(world: World, job: int, output: str) -> str:
    """The disclosure status the service gave one output of a job."""
    s = Session.open(world.home, "ada")
    try:
        request = repo.find_output_request(s.conn, job)
    finally:
        s.close()
    assert request is not None
    return next(o.sdc_status.value for o in request.outputs if o.name == output)


def failing_reason(world: World, job: int, output: str) -> str:
    """The reason the report gives for the first failing cell of a table."""
    table = next(o for o in report_of(world, job)["outputs"] if o["name"] == output)
    return str(next(c["reason"] for c in table["cells"] if c["status"] == "fail"))


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(app: FastAPI, token: str) -> tuple[TestClient, str]:
    """A browser-like client signed in with `token` through the sign-in page, and the
    CSRF token its forms carry."""
    browser = TestClient(app, follow_redirects=False)
    nonce = CSRF.search(browser.get("/login").text)
    assert nonce is not None
    signed = browser.post("/login", data={"token": token, "csrf": nonce.group(1), "next": "/"})
    assert signed.status_code == 303, signed.text
    csrf = CSRF.search(browser.get("/jobs").text)
    assert csrf is not None
    return browser, csrf.group(1)


def free_port() -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def tre_serve(home: Path, log: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`tre serve` in its own process on a free loopback port, its output in `log`;
    (its URL, the process) once it answers. Stopped on leaving."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tre.cli.main", "--home", str(home), "serve",
             "--host", "127.0.0.1", "--port", str(port), *options],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:  # up
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tre serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=60)


class ServerThread:
    """A real uvicorn serving `app` on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def served(app: FastAPI) -> Iterator[ServerThread]:
    """The app behind a real uvicorn on loopback."""
    with ServerThread(app) as server:
        yield server
