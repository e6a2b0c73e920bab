"""`tre serve`: the HTTP API and web pages for a TRE home, optionally with its dispatcher."""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import TYPE_CHECKING

import click

from tre.cli.common import console, err_console, home_option
from tre.errors import InputError, TreError

if TYPE_CHECKING:
    from tre.web.ticks import DispatcherTicks

log = logging.getLogger("tre.serve")
RESTART_PAUSE_MAX = 60.0


def register(cli: click.Group) -> None:
    cli.add_command(serve)


class DispatcherThread(threading.Thread):
    """The dispatcher loop beside the server, with its own session (SQLite connections
    belong to one thread) and the home's dispatcher lock."""

    def __init__(
        self,
        ctx: click.Context,
        interval: float,
        max_running: int,
        ticks: DispatcherTicks | None = None,
    ) -> None:
        from tre.web.ticks import DispatcherTicks  # tre.web loads fastapi

        super().__init__(name="tre-dispatcher", daemon=True)
        self.home = home_option(ctx)
        self.interval = interval
        self.max_running = max_running
        self.stop = threading.Event()
        self.error: TreError | None = None
        self.restarts = 0
        #: Each finished pass, for GET /api/health.
        self.ticks = ticks or DispatcherTicks()

    def run(self) -> None:
        """Pass after pass until `stop` is set. Another dispatcher holding the home is
        kept as the reason it does not run; anything else that stops the loop (the key
        service gone, a full disk, a bug) is logged and the loop starts again after a
        pause, so the server never goes on with its jobs silently stuck."""
        from tre.service.dispatcher import Dispatcher, DispatcherBusy
        from tre.service.session import Session

        pause = 1.0
        while not self.stop.is_set():
            try:
                session = Session.open(self.home)
            except TreError as exc:
                self.error = exc
                log.error("the dispatcher cannot start: %s", exc.render())
                if self.stop.wait(pause):
                    return
                pause = min(pause * 2, RESTART_PAUSE_MAX)
                continue
            self.error = None
            try:
                Dispatcher(session, max_running=self.max_running).run(
                    interval=self.interval,
                    should_stop=self.stop.is_set,
                    after_tick=self.ticks.tick,
                )
                return
            except DispatcherBusy as exc:
                self.error = exc
                log.error("the dispatcher stopped: %s", exc.render())
                return
            except Exception as exc:
                self.restarts += 1
                log.error(
                    "the dispatcher stopped (%s); starting it again in %.0fs (restart %d)",
                    exc.render() if isinstance(exc, TreError) else type(exc).__name__,
                    pause,
                    self.restarts,
                )
            finally:
                session.close()
            if self.stop.wait(pause):
                return
            pause = min(pause * 2, RESTART_PAUSE_MAX)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--with-dispatcher",
    is_flag=True,
    help="Run the dispatcher in the same process (else run 'tre run' beside the server).",
)
@click.option(
    "--interval",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds between dispatcher passes.",
)
@click.option(
    "--max-running",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Jobs the dispatcher runs at the same time.",
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark browser session cookies Secure: set this when people reach the server over "
    "https (e.g. behind a TLS proxy).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="The server's log (info logs every request's method, path and status).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    with_dispatcher: bool,
    interval: float,
    max_running: int,
    secure_cookies: bool,
    log_level: str,
) -> None:
    """Serve the API (/api, described at /openapi.json) and the web pages for this home.

    People authenticate with tokens an admin issues ('tre admin token NAME').
    """
    # imported here: uvicorn, fastapi and the dispatcher take a second to load, and no
    # other command needs them
    import uvicorn

    from tre.service.preflight import check_can_start
    from tre.service.session import Session
    from tre.web import create_app
    from tre.web.ticks import DispatcherTicks

    obj = ctx.find_root().obj or {}
    if obj.get("acting_as") or obj.get("server"):
        raise InputError(
            "tre serve takes neither --as nor --server",
            fix="run it on the TRE host as the service account; people sign in with tokens",
        )
    ticks = DispatcherTicks() if with_dispatcher else None
    app = create_app(home_option(ctx), cookie_secure=secure_cookies, dispatcher_ticks=ticks)
    root = app.state.tre.home.root
    if not _loopback(host):
        err_console.print(
            f"note: listening on {host} over plain http; put a TLS proxy in front of it and "
            "start the server with --secure-cookies"
        )
    if with_dispatcher:  # a host where no job can start: refuse before serving
        preflight_session = Session.open(home_option(ctx))
        try:
            check_can_start(preflight_session)
        finally:
            preflight_session.close()
    dispatcher = DispatcherThread(ctx, interval, max_running, ticks) if with_dispatcher else None
    if dispatcher is not None:
        dispatcher.start()
    console.print(
        f"tre serve: http://{host}:{port} for {root}"
        + (" (with the dispatcher)" if dispatcher else " (run 'tre run' for the dispatcher)"),
        markup=False,
    )
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, server_header=False, proxy_headers=False
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C or SIGINT, then raises it again: this is
        # the way a server is asked to stop, not an abort.
        pass
    finally:
        if dispatcher is not None:
            dispatcher.stop.set()
            dispatcher.join(timeout=interval + 30)
    console.print("tre serve stopped", markup=False)
    if dispatcher is not None and dispatcher.error is not None:
        raise dispatcher.error
