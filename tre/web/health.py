"""GET /api/health: whether the server is up, and how long ago its dispatcher last
finished a pass.

Anyone may ask (a load balancer or a monitor has no token), so the answer is those two
facts and nothing else: no version, path, job, person or error message.

- `status`: "up" when the server answers and can read its state store; "down" (HTTP
  503) when it cannot. Why is in the server's log, not in the answer.
- `dispatcher_last_tick_age_seconds`: seconds since the dispatcher last finished a pass,
  as this server knows it. Only the dispatcher thread of `tre serve --with-dispatcher`
  reports to the server (`DispatcherTicks`); for a `tre run` beside it, or before the
  first pass has finished, the answer is "unknown" rather than a guess. A pass held up
  (a long check, say) shows as an age that keeps growing.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Literal

from fastapi import Request, Response
from pydantic import BaseModel, Field

from tre.web.routes import Routes
from tre.web.ticks import DispatcherTicks

log = logging.getLogger("tre.web")
router = Routes(prefix="/api", tags=["health"])
UNKNOWN = "unknown"


class HealthOut(BaseModel):
    status: Literal["up", "down"] = Field(
        description="up: the server answers and can read its state store; down: it cannot "
        "(answered with 503; the server's log says why)."
    )
    dispatcher_last_tick_age_seconds: float | Literal["unknown"] = Field(
        description="Seconds since the dispatcher last finished a pass; 'unknown' when this "
        "server does not run the dispatcher ('tre run' beside it) or no pass has finished yet."
    )


@router.get(
    "/health",
    responses={503: {"model": HealthOut, "description": "The server cannot read its store."}},
)
def health(request: Request, response: Response) -> HealthOut:
    """Whether the server is up, and the age of the dispatcher's last pass (no token)."""
    state = request.app.state.tre
    ticks: DispatcherTicks | None = state.dispatcher_ticks
    age = ticks.age() if ticks is not None else None
    up = _store_readable(state.home.db_path)
    if not up:
        response.status_code = 503
    return HealthOut(
        status="up" if up else "down",
        dispatcher_last_tick_age_seconds=UNKNOWN if age is None else round(age, 1),
    )


def _store_readable(path: Path) -> bool:
    """The state store opens read-only and holds tre's tables (never creates the file)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            conn.execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("health: the state store cannot be read: %s", exc)
        return False
    return True
