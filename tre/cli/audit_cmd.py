"""`tre audit verify|log`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from tre.cli.common import console, err_console, session


def register(cli: click.Group) -> None:
    cli.add_command(audit_group)


@click.group("audit")
def audit_group() -> None:
    """Inspect and verify the tamper-evident audit log (admins)."""


@audit_group.command("verify")
@click.pass_context
def verify_cmd(ctx: click.Context) -> int:
    """Check every event's hash and the chain; say where anything was changed."""
    from policies.access import raise_if, role_refusals
    from tre import audit
    from tre.models import Role

    with session(ctx) as s:
        raise_if(
            role_refusals(s.person(), Role.ADMIN, "verifying the audit log"),
            "you cannot verify the audit log",
        )
        result = audit.verify(s.conn, s.home.audit_head)
    for note in result.notes:
        err_console.print(f"note: {note}")
    if result.ok:
        console.print(
            f"[green]audit log intact[/]: {result.events} events, chain and anchor verified"
        )
        return 0
    err_console.print(
        f"[bold red]audit log NOT intact[/]: {len(result.problems)} problem(s) in "
        f"{result.events} events"
    )
    for problem in result.problems:
        err_console.print(f"  - {problem}", markup=False)
    return 1


@audit_group.command("log")
@click.option("--object", "obj", help="Only events about this object, e.g. job:3.")
@click.option("--last", type=int, default=50, show_default=True)
@click.pass_context
def log_cmd(ctx: click.Context, obj: str | None, last: int) -> None:
    """The newest events."""
    from policies.access import raise_if, role_refusals
    from tre import audit
    from tre.models import Role

    with session(ctx) as s:
        raise_if(
            role_refusals(s.person(), Role.ADMIN, "reading the audit log"),
            "you cannot read the audit log",
        )
        found = audit.events(s.conn, obj=obj, limit=last)
    table = Table("#", "time", "actor", "role", "action", "object", "details")
    for e in found:
        table.add_row(
            str(e.seq), e.at, e.actor, e.role, e.shown_action, e.object, json.dumps(e.details)[:80]
        )
    console.print(table)
