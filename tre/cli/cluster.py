"""`tre cluster check`: is this site ready to run tre's jobs on Slurm?"""

from __future__ import annotations

import click

from slurm.check import check_cluster, render_example
from slurm.profiles import available, load_profile
from tre.cli.common import console, home_option
from tre.errors import InputError
from tre.home import Home


def register(cli: click.Group) -> None:
    cli.add_command(cluster)


@click.group()
def cluster() -> None:
    """Check the Slurm cluster and site profile (admins)."""


@cluster.command("check")
@click.option(
    "--profile",
    "profile_ref",
    metavar="NAME_OR_FILE",
    help=f"Site profile ({', '.join(available())}, or a file); default: the home's.",
)
@click.option(
    "--project",
    default="tre-check",
    show_default=True,
    help="Project name for the account mapping.",
)
@click.option("--show-script", is_flag=True, help="Print the job script a job would get.")
@click.pass_context
def check_cmd(ctx: click.Context, profile_ref: str | None, project: str, show_script: bool) -> int:
    """Render a job script, submit a tiny job, and report what works and what does not."""
    if profile_ref is None:
        profile_ref = Home.open(home_option(ctx)).config.slurm_profile
        if profile_ref is None:
            raise InputError("this home names no site profile", fix="give --profile NAME_OR_FILE")
    profile = load_profile(profile_ref)
    if show_script:
        console.print(render_example(profile, project), markup=False, highlight=False)
    console.print(f"Checking site profile [bold]{profile.name}[/] ({profile.backend})…")
    results = check_cluster(profile, project=project)
    for result in results:
        mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
        console.print(f"{mark} {result.name}: ", end="")
        console.print(result.detail, markup=False)
        if result.fix:
            console.print(f"    fix: {result.fix}", markup=False)
    failed = [r for r in results if not r.ok]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed[/]")
        return 1
    console.print("[green]this site can run tre jobs with this profile[/]")
    return 0
