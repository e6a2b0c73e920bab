"""What every command shares: the session, output helpers, option types.

Every module of tre.cli is imported for every command (click builds the whole command
tree, and `tre --help` lists it), so they import at the top only click, rich and tre's
light foundation (errors, client_config). Anything that loads the service layer, pydantic
models, the engines, polars, pyarrow, dask or fastapi is imported inside the command
that needs it: `tre --version` must not pay 2 s for modules it never uses (issue 27;
tests/tre/cli/test_imports.py holds the line).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from tre.client_config import configured_server
from tre.errors import InputError

if TYPE_CHECKING:
    from tre.client import Client
    from tre.service.session import Session

# Not on a terminal (pipes, CI logs), rich would wrap tables at 80 columns; give it room.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


def remote(ctx: click.Context) -> Client | None:
    """A client of the tre server if --server (or TRE_SERVER, or client.yaml) names one
    and no --home is given; None to work on a local home."""
    obj = ctx.find_root().obj or {}
    url = obj.get("server") or (None if obj.get("home") else configured_server())
    if not url:
        return None
    if obj.get("acting_as"):
        raise InputError(
            "--as does not work with a server: the server knows you by your token",
            fix="leave out --as",
        )
    from tre.client import Client  # imported here: httpx and the service models, 0.8 s

    return Client.connect(url)


@contextmanager
def session(ctx: click.Context) -> Iterator[Session]:
    """A session on the home and identity given by the global options."""
    obj = ctx.find_root().obj or {}
    if obj.get("server"):
        raise InputError(
            f"'tre {ctx.command_path.partition(' ')[2]}' works on a TRE home, not through --server",
            fix="run it on the TRE host without --server; through a server you can use "
            "submit, status, logs, cancel, outputs, review, project, and admin "
            "register|update|people",
        )
    from tre.service.session import Session  # imported here: the store and pydantic models

    opened = Session.open(obj.get("home"), obj.get("acting_as"))
    try:
        yield opened
    finally:
        opened.close()


def home_option(ctx: click.Context) -> Path | None:
    home: Path | None = (ctx.find_root().obj or {}).get("home")
    return home


class DateType(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return datetime.strptime(str(value), "%Y-%m-%d").date()
        except ValueError:
            self.fail(
                f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2027-03-31", param, ctx
            )


DATE = DateType()


class ProfileOption(click.Option):
    """An option whose help names the packaged Slurm site profiles where it says
    `{profiles}`, looked up only when the help is shown: slurm.profiles loads pydantic
    and the models, which no command needs just to be listed."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        from slurm.profiles import available

        return record[0], record[1].replace("{profiles}", ", ".join(available()))


def state_style(state: str) -> str:
    return {
        "queued": "yellow",
        "running": "cyan",
        "checking": "cyan",
        "awaiting_review": "magenta",
        "released": "green",
        "partially_released": "green",
        "failed": "red",
        "refused": "red",
        "rejected": "red",
        "cancelled": "dim",
        "returned": "yellow",
        "approved": "green",
        "requested": "yellow",
        "pass": "green",
        "review": "yellow",
        "fail": "red",
    }.get(state, "white")


def styled(state: str) -> str:
    return f"[{state_style(state)}]{state}[/]"
