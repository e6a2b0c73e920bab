"""`tre cluster check`: is this site ready to run tre's jobs on Slurm?"""

from __future__ import annotations

import click

from tre.cli.common import ProfileOption, console, home_option
from tre.errors import InputError


def register(cli: click.Group) -> None:
    cli.add_command(cluster)


@click.group()
def cluster() -> None:
    """Check the Slurm cluster and site profile (admins)."""


@cluster.command("check")
@click.option(
    "--profile",
    "profile_ref",
    cls=ProfileOption,
    metavar="NAME_OR_FILE",
    help="Site profile ({profiles}, or a file); default: the home's.",
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
    from slurm.check import check_cluster, render_example
    from slurm.profiles import load_profile
    from tre.home import Home

    if profile_ref is None:
        config = Home.open(home_option(ctx)).config
        if config.backend == "local":
            return _check_local(ctx)
        profile_ref = config.slurm_profile
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


@cluster.command("sudo-rule")
@click.option(
    "--account",
    required=True,
    help="The OS account the tre service runs as (it submits jobs as their job users).",
)
def sudo_rule_cmd(account: str) -> None:
    """Print the sudoers rule that lets the TRE's account submit jobs as their job users."""
    from slurm.sudo_rule import for_this_host

    click.echo(for_this_host(account), nl=False)


def _check_local(ctx: click.Context) -> int:
    """The embedded default: can a sandboxed job start on this host (the preflight)?"""
    from slurm import sandbox
    from tre.service.preflight import JobsCannotStart, check_can_start
    from tre.service.session import Session

    console.print("Checking the local backend: starting a throwaway job sandbox…")
    opened = Session.open(home_option(ctx))
    try:
        outcome = check_can_start(opened)
    except JobsCannotStart as exc:
        console.print("[red]✗[/] sandbox preflight: ", end="")
        console.print(exc.message, markup=False)
        for reason in exc.reasons:
            console.print(f"    {reason}", markup=False)
        console.print("[red]jobs cannot start on this host[/]")
        return 1
    finally:
        opened.close()
    if outcome is None:
        console.print(
            "jobs of this home run unsandboxed (isolation: none): there is no sandbox to check"
        )
        return 0
    console.print(
        f"[green]✓[/] sandbox preflight: a job starts as {sandbox.JOB_USER}, imports tre, "
        f"reaches the key service and writes its output ({outcome.seconds:.2f}s)"
    )
    console.print("[green]this host can run tre jobs[/]")
    return 0
