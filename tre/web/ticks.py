"""When the server's dispatcher thread last finished a pass (for GET /api/health).

Its own module, importing nothing of the web app, so the app's state can hold one
without the state depending on the routes.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class DispatcherTicks:
    """When the server's dispatcher thread last finished a pass. That thread writes it,
    requests read it: one float, replaced whole, so no lock is needed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None

    def tick(self) -> None:
        """A pass has just finished (the dispatcher's `after_tick`)."""
        self._last = self._clock()

    def age(self) -> float | None:
        """Seconds since the last finished pass; None before the first."""
        last = self._last
        return None if last is None else max(0.0, self._clock() - last)
