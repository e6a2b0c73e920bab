"""`tre`: the entry point, global options and the one place errors become exit codes."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from tre.cli import (
    admin,
    audit_cmd,
    backup,
    cluster,
    datasets,
    jobs,
    keys,
    projects,
    review,
    serve,
    setup,
)
from tre.cli.common import err_console
from tre.errors import TreError

INTERNAL_ERROR = 70


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="TRE_HOME",
    help="The TRE home (default: $TRE_HOME, else ./.tre).",
)
@click.option(
    "--as",
    "acting_as",
    metavar="NAME",
    help="Act as another registered person. Demo homes only (tre init --demo).",
)
@click.option(
    "--server",
    metavar="URL",
    envvar="TRE_SERVER",
    help="Work through a tre server (tre serve) instead of a home: submit, status, logs, "
    "cancel, outputs, review, project, and admin register|update|people. The token comes "
    "from TRE_TOKEN or ~/.config/tre/token.",
)
@click.version_option(package_name="tre")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, acting_as: str | None, server: str | None) -> None:
    """tre: run research jobs on approved, secured data, with disclosure control and
    two-person output review.

    Roles: admins register people, datasets and projects; researchers submit jobs;
    output checkers review and release outputs.
    """
    ctx.obj = {"home": home, "acting_as": acting_as, "server": server}


for module in (
    setup,
    admin,
    projects,
    datasets,
    keys,
    jobs,
    review,
    audit_cmd,
    backup,
    cluster,
    serve,
):
    module.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every TreError becomes its message and exit code, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = cli.main(args=argv, prog_name="tre", standalone_mode=False)
    except TreError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
        for reason in exc.reasons:
            err_console.print(f"  - {reason}", markup=False, soft_wrap=True)
        if exc.fix:
            err_console.print(f"[bold]fix ({exc.owner}):[/] ", end="", soft_wrap=True)
            err_console.print(exc.fix, markup=False, soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("TRE_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__} "
            "(a bug in tre, not your input; run again with TRE_DEBUG=1 for the traceback "
            "and report it)"
        )
        return INTERNAL_ERROR
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
