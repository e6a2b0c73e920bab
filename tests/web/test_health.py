"""GET /api/health: no token, up or down, the age of the dispatcher's last pass, and
nothing else (tests/web/test_serve.py asks a real `tre serve` with its dispatcher)."""

from __future__ import annotations

import pytest

from tests.web.conftest import TestClient, World
from tre.web import create_app
from tre.web.ticks import DispatcherTicks

pytestmark = pytest.mark.slow
FIELDS = {"status", "dispatcher_last_tick_age_seconds"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("header", [None, "Bearer junk"])
def test_anyone_may_ask_and_a_server_without_its_dispatcher_says_unknown(client, header):
    response = client.get("/api/health", headers={"Authorization": header} if header else {})
    assert response.status_code == 200
    # 'tre run' beside the server tells it nothing: the age is not invented.
    assert response.json() == {"status": "up", "dispatcher_last_tick_age_seconds": "unknown"}


def test_the_age_of_the_last_pass_of_the_servers_own_dispatcher(world: World):
    clock = Clock()
    ticks = DispatcherTicks(clock=clock)
    with TestClient(create_app(world.home, dispatcher_ticks=ticks)) as client:
        before = client.get("/api/health").json()
        assert before["dispatcher_last_tick_age_seconds"] == "unknown"  # no pass finished yet
        ticks.tick()
        clock.now += 42.0
        after = client.get("/api/health").json()
    assert after == {"status": "up", "dispatcher_last_tick_age_seconds": 42.0}


def test_a_server_that_cannot_read_its_store_is_down_and_says_nothing_more(client, world):
    (world.home / "state.db").rename(world.home / "state.db.moved")
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json() == {"status": "down", "dispatcher_last_tick_age_seconds": "unknown"}
    assert not (world.home / "state.db").exists()  # asking never makes an empty store


def test_the_openapi_description_asks_no_token_and_lists_200_and_503(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/health"]["get"]
    assert "security" not in operation
    assert set(operation["responses"]) == {"200", "503"}
    schema = client.get("/openapi.json").json()["components"]["schemas"]["HealthOut"]
    assert set(schema["properties"]) == FIELDS
