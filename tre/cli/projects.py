"""`tre project ...`: requesting, approving and managing projects, on the TRE host or
through a server (`--server`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from rich.table import Table

from tre.cli.common import DATE, console, remote, session, styled
from tre.states import ProjectState  # tre.models' own, without loading pydantic
from tre.units import format_duration, format_memory


def register(cli: click.Group) -> None:
    cli.add_command(project)


@click.group()
def project() -> None:
    """Request, approve and manage projects."""


@project.command("request")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def request_cmd(ctx: click.Context, file: Path) -> None:
    """Request a project described in a YAML FILE (see docs/projects.md)."""
    from tre.service import projects

    data = projects.read_request(file)
    if (client := remote(ctx)) is not None:
        with client:
            p = client.request_project(data)
    else:
        with session(ctx) as s:
            p = projects.request_project(s, data)
    console.print(
        f"Requested project [bold]{p.name}[/]; an admin other than you must approve "
        f"it: tre project approve {p.name}"
    )


@project.command("approve")
@click.argument("name")
@click.option("--expires", type=DATE, help="Set a new expiry date (renewal).")
@click.pass_context
def approve_cmd(ctx: click.Context, name: str, expires: date | None) -> None:
    """Approve (or renew) project NAME."""
    from tre.service import projects

    if (client := remote(ctx)) is not None:
        with client:
            p = client.approve_project(name, expires=expires)
    else:
        with session(ctx) as s:
            p = projects.approve_project(s, name, expires=expires)
    console.print(f"Project [bold]{p.name}[/] is {styled(p.state.value)} until {p.expires}")


def _state_command(command: str, state: ProjectState) -> click.Command:
    @click.command(command, help=f"Make project NAME {state.value} (admins), with a reason.")
    @click.argument("name")
    @click.option("--reason", required=True)
    @click.pass_context
    def cmd(ctx: click.Context, name: str, reason: str) -> None:
        from tre.service import projects

        if (client := remote(ctx)) is not None:
            with client:
                p = client.change_project_state(name, state, reason)
        else:
            with session(ctx) as s:
                p = projects.change_project_state(s, name, state, reason)
        console.print(f"Project [bold]{p.name}[/] is {styled(p.state.value)}")

    return cmd


for _command, _state in (
    ("reject", ProjectState.REJECTED),
    ("suspend", ProjectState.SUSPENDED),
    ("close", ProjectState.CLOSED),
):
    project.add_command(_state_command(_command, _state))


@project.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Projects you may see."""
    from tre.service import projects

    if (client := remote(ctx)) is not None:
        with client:
            found = client.list_projects()
    else:
        with session(ctx) as s:
            found = projects.list_projects(s)
    table = Table("name", "state", "lead", "members", "datasets", "expires")
    for p in found:
        table.add_row(
            p.name,
            styled(p.state.value),
            p.lead,
            ", ".join(p.members),
            ", ".join(d.dataset for d in p.datasets),
            str(p.expires),
        )
    console.print(table)


@project.command("show")
@click.argument("name")
@click.pass_context
def show_cmd(ctx: click.Context, name: str) -> None:
    """One project: purpose, members, approved datasets and columns, quota."""
    from tre.service import projects

    if (client := remote(ctx)) is not None:
        with client:
            p = client.show_project(name)
    else:
        with session(ctx) as s:
            p = projects.show_project(s, name)
    console.print(f"[bold]{p.name}[/]: {p.title}  ({styled(p.state.value)}, expires {p.expires})")
    console.print(f"Purpose: {p.purpose}", markup=False)
    console.print(f"Lead: {p.lead}; members: {', '.join(p.members)}")
    console.print(f"Requested by {p.requested_by}; approved by {p.approved_by or '-'}")
    q = p.quota
    console.print(
        f"Quota: {q.workers} workers x {q.cores} cores, {format_memory(q.memory)} each, "
        f"walltime {format_duration(q.walltime)}"
    )
    for d in p.datasets:
        console.print(f"  {d.dataset}: {', '.join(d.columns)}")
