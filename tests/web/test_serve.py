"""`tre serve` as its own process: with its dispatcher, a job submitted through the API
runs to review; the token never reaches the server's log."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.web.conftest import PASSING, SPEC, World, tre_serve

pytestmark = pytest.mark.slow


def test_the_server_runs_submitted_jobs_with_its_dispatcher(world: World, tmp_path):
    log = tmp_path / "serve.log"
    with (
        tre_serve(world.home, log, "--with-dispatcher", "--interval", "0.2") as (url, _),
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {world.tokens['rita']}"}
        ) as http,
    ):
        job = http.post("/api/jobs", json={"spec": SPEC}).json()
        deadline = time.monotonic() + 180
        state = job["state"]
        while state in ("queued", "running", "checking"):  # any final state ends the wait
            assert time.monotonic() < deadline, f"job still {state}"
            time.sleep(0.5)
            state = http.get(f"/api/jobs/{job['id']}").json()["job"]["state"]
        assert state == "awaiting_review"
        # The server knows its own dispatcher's passes, and tells anyone (no token).
        health = httpx.get(f"{url}/api/health").json()
        assert health["status"] == "up"
        assert isinstance(health["dispatcher_last_tick_age_seconds"], float)
        outputs = http.get(f"/api/jobs/{job['id']}/outputs").json()["outputs"]
        assert PASSING in [o["name"] for o in outputs]
    text = log.read_text()
    assert "(with the dispatcher)" in text and 'POST /api/jobs HTTP/1.1" 201' in text
    assert world.tokens["rita"] not in text


def test_serve_takes_no_as(world: World, capsys):
    from tre.cli.main import main

    code = main(["--home", str(world.home), "--as", "ada", "serve"])
    assert code == 2
    assert "tre serve takes neither --as nor --server" in capsys.readouterr().err


def test_a_dispatcher_thread_that_stops_is_started_again(world: World, monkeypatch):
    # Anything that stops the loop (a bug, the key service gone) used to end the thread
    # silently, leaving jobs queued behind a server that seemed fine.
    import click

    from tre.cli import serve
    from tre.service.dispatcher import Dispatcher

    calls = []

    def run(self, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        while not kwargs["should_stop"]():
            time.sleep(0.05)

    monkeypatch.setattr(Dispatcher, "run", run)
    ctx = click.Context(click.Command("tre"), obj={"home": world.home})
    thread = serve.DispatcherThread(ctx, interval=0.1, max_running=1)
    thread.start()
    deadline = time.monotonic() + 20
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    thread.stop.set()
    thread.join(timeout=10)
    assert len(calls) == 2 and thread.restarts == 1
    assert thread.error is None and not thread.is_alive()
