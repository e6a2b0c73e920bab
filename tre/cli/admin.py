"""`tre admin ...`: registering people and their roles."""

from __future__ import annotations

from datetime import date

import click
from rich.table import Table

from tre.cli.common import DATE, console, session
from tre.service import people


def register(cli: click.Group) -> None:
    cli.add_command(admin)


@click.group()
def admin() -> None:
    """Register people and manage their roles (admins)."""


@admin.command("register")
@click.argument("name")
@click.option("--full-name", required=True)
@click.option("--email", default="")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(["admin", "researcher", "checker"]),
    help="Repeat for several roles.",
)
@click.option("--accredited-until", type=DATE, help="Researchers: accreditation expiry.")
@click.pass_context
def register_cmd(
    ctx: click.Context,
    name: str,
    full_name: str,
    email: str,
    roles: tuple[str],
    accredited_until: date | None,
) -> None:
    """Register NAME with one or more roles."""
    with session(ctx) as s:
        person = people.register_person(
            s,
            name=name,
            full_name=full_name,
            email=email,
            roles=list(roles),
            accredited_until=accredited_until,
        )
    console.print(f"Registered [bold]{person.name}[/] as {', '.join(person.roles)}")


@admin.command("update")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["admin", "researcher", "checker"]),
    help="Replace the roles (repeat for several).",
)
@click.option("--accredited-until", type=DATE)
@click.option("--deactivate", is_flag=True, help="Stop NAME from acting at all.")
@click.option("--activate", is_flag=True)
@click.pass_context
def update_cmd(
    ctx: click.Context,
    name: str,
    roles: tuple[str],
    accredited_until: date | None,
    deactivate: bool,
    activate: bool,
) -> None:
    """Change NAME's roles, accreditation, or whether they may act."""
    active = False if deactivate else (True if activate else None)
    with session(ctx) as s:
        person = people.update_person(
            s, name, roles=list(roles) or None, accredited_until=accredited_until, active=active
        )
    console.print(
        f"Updated [bold]{person.name}[/]: roles {', '.join(person.roles)}, "
        f"accredited until {person.accreditation_expires or '-'}, "
        f"{'active' if person.active else 'deactivated'}"
    )


@admin.command("people")
@click.pass_context
def people_cmd(ctx: click.Context) -> None:
    """List registered people."""
    with session(ctx) as s:
        everyone = people.list_people(s)
    table = Table("name", "full name", "roles", "accredited until", "active")
    for p in everyone:
        table.add_row(
            p.name,
            p.full_name,
            ", ".join(p.roles),
            str(p.accreditation_expires or "-"),
            "yes" if p.active else "no",
        )
    console.print(table)
