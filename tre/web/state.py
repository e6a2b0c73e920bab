"""What the web app holds for its lifetime: the home, the cookie-signing key, templates.

Nothing here holds a database connection: SQLite connections belong to one thread, and
FastAPI runs each synchronous endpoint on a worker thread, so every request opens its
own session (see `tre.web.auth.Credentials.session`).
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tre.errors import PlatformError
from tre.home import Home
from tre.web.report_view import FLAGS, STATUS_SYMBOLS

if TYPE_CHECKING:
    from tre.web.ticks import DispatcherTicks

KEY_FILE = "web.key"  # in TRE_HOME: signs browser session cookies and CSRF tokens


@dataclass(frozen=True)
class WebState:
    """The app's fixed context."""

    home: Home
    secret: bytes
    templates: Environment
    cookie_secure: bool = False  # set when the service is reached over https
    #: Requests that change state take turns here. SQLite lets one writer in at a time
    #: anyway; queueing in-process is fairer than its busy-wait, which sleeps and retries,
    #: so the slowest writer under load waits far less.
    writes: threading.Lock = field(default_factory=threading.Lock, compare=False)
    #: Where the dispatcher thread of `tre serve --with-dispatcher` records its passes
    #: (GET /api/health); None when the server runs no dispatcher.
    dispatcher_ticks: DispatcherTicks | None = field(default=None, compare=False)


def load_secret(home: Home) -> bytes:
    """The home's cookie-signing key, made (0600) on first use.

    Kept in the home rather than in memory so a restarted server keeps its sessions;
    deleting the file signs everyone out.
    """
    path = home.root / KEY_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another server process made it first
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
    data = path.read_bytes()
    if len(data) < 32:
        raise PlatformError(
            f"the web session key {path} is damaged",
            fix=f"delete {path}; the server makes a new one (everyone signs in again)",
        )
    return data


def template_environment() -> Environment:
    """Jinja2 with autoescaping on for every template, and undefined names as errors."""
    env = Environment(
        loader=PackageLoader("tre.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Macros imported from macros.html see globals, not the page's context.
    env.globals.update(flags=FLAGS, symbols=STATUS_SYMBOLS)
    return env


def make_state(
    root: Path | None,
    *,
    cookie_secure: bool = False,
    dispatcher_ticks: DispatcherTicks | None = None,
) -> WebState:
    """Open the home and gather what the app needs."""
    home = Home.open(root)
    return WebState(
        home=home,
        secret=load_secret(home),
        templates=template_environment(),
        cookie_secure=cookie_secure,
        dispatcher_ticks=dispatcher_ticks,
    )
