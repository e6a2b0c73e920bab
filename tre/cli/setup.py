"""`tre init` and `tre schema`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tre.cli.common import ProfileOption, console, home_option

# slurm.backends.BACKENDS, written out: that module loads pydantic and the models, which
# `tre --help` needs none of (tests/tre/cli/test_imports.py checks the two agree).
BACKENDS = ("local", "slurm-runner", "slurm-cluster")


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(schema)


@click.command()
@click.option(
    "--demo",
    is_flag=True,
    help="A throwaway home for trying tre: --as NAME may act as anyone registered.",
)
@click.option(
    "--admin",
    "admin_name",
    metavar="NAME",
    help="Name of the first admin (default: your OS user name).",
)
@click.option("--full-name", default=None, help="The first admin's full name.")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="local",
    show_default=True,
    help="Where jobs run: a local Dask cluster, or Slurm.",
)
@click.option(
    "--slurm-profile",
    cls=ProfileOption,
    metavar="NAME_OR_FILE",
    help="Site profile for Slurm backends ({profiles}, or a file).",
)
@click.option(
    "--isolation",
    type=click.Choice(["sandbox", "none"]),
    default="sandbox",
    show_default=True,
    help="sandbox: keys only in the key service, jobs in a bubblewrap sandbox as the "
    "tre-job user (needs root). none: researcher code is trusted (development only).",
)
@click.pass_context
def init(
    ctx: click.Context,
    demo: bool,
    admin_name: str | None,
    full_name: str | None,
    backend: str,
    slurm_profile: str | None,
    isolation: str,
) -> None:
    """Create a TRE home, with yourself (or --admin) as its first admin."""
    from tre.home import default_home
    from tre.service.people import init_home
    from tre.service.session import os_user

    root = home_option(ctx) or default_home()
    name = admin_name or os_user()
    home = init_home(
        Path(root),
        admin=name,
        full_name=full_name or name,
        demo=demo,
        backend=backend,
        slurm_profile=slurm_profile,
        isolation="sandbox" if isolation == "sandbox" else "none",
    )
    console.print(f"Created {'demo ' if demo else ''}TRE home at [bold]{home.root}[/]")
    console.print(f"First admin: [bold]{name}[/]. Register people with 'tre admin register'.")
    if backend != "local":
        console.print(f"Jobs run on Slurm ({backend}, profile {slurm_profile}).")
    if isolation == "none":
        console.print(
            "[bold yellow]Researcher code is trusted in this home (isolation: none):[/] "
            "it runs as your user and can read the keys. Never use it for real data."
        )
    if not demo:
        console.print(
            "A project needs a second admin to approve it: register one, then confirm "
            "them with 'tre admin confirm NAME'."
        )


@click.group()
def schema() -> None:
    """Print JSON Schemas (for editor autocompletion)."""


@schema.command("job")
def schema_job() -> None:
    """The JSON Schema of a job spec."""
    from jobs.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
