"""`tre admin ...`: registering people and their roles (on the TRE host or through a
server), and their API tokens (on the TRE host only: a token is a credential, issued
where the home is)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import click
from rich.table import Table

from tre.cli.common import DATE, console, err_console, remote, session
from tre.errors import InputError


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
    from tre.service import people

    if (client := remote(ctx)) is not None:
        with client:
            person = client.register_person(
                name=name,
                full_name=full_name,
                email=email,
                roles=list(roles),
                accredited_until=accredited_until,
            )
    else:
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
    if "admin" in person.roles and not person.confirmed_admin:
        console.print(
            f"{person.name} approves nothing until a confirmed admin other than you runs "
            f"'tre admin confirm {person.name}'."
        )


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
    from tre.service import people

    active = False if deactivate else (True if activate else None)
    if (client := remote(ctx)) is not None:
        with client:
            person = client.update_person(
                name, roles=list(roles) or None, accredited_until=accredited_until, active=active
            )
    else:
        with session(ctx) as s:
            person = people.update_person(
                s, name, roles=list(roles) or None, accredited_until=accredited_until, active=active
            )
    console.print(
        f"Updated [bold]{person.name}[/]: roles {', '.join(person.roles)}, "
        f"accredited until {person.accreditation_expires or '-'}, "
        f"{'active' if person.active else 'deactivated'}"
    )


@admin.command("confirm")
@click.argument("name")
@click.pass_context
def confirm_cmd(ctx: click.Context, name: str) -> None:
    """Confirm NAME's admin role: a new admin approves nothing until a confirmed admin
    other than the one who made them an admin confirms them."""
    from tre.service import people

    if (client := remote(ctx)) is not None:
        with client:
            person = client.confirm_admin(name)
    else:
        with session(ctx) as s:
            person = people.confirm_admin(s, name)
    console.print(f"Confirmed [bold]{person.name}[/]'s admin role")


@admin.command("people")
@click.pass_context
def people_cmd(ctx: click.Context) -> None:
    """List registered people."""
    from tre.service import people

    if (client := remote(ctx)) is not None:
        with client:
            everyone = client.list_people()
    else:
        with session(ctx) as s:
            everyone = people.list_people(s)
    table = Table("name", "full name", "roles", "accredited until", "active")
    for p in everyone:
        table.add_row(
            p.name,
            p.full_name,
            ", ".join(
                r if r != "admin" or p.confirmed_admin else "admin (unconfirmed)" for r in p.roles
            ),
            str(p.accreditation_expires or "-"),
            "yes" if p.active else "no",
        )
    console.print(table)


@admin.command("token")
@click.argument("name")
@click.option(
    "--expires",
    metavar="DATE|DURATION",
    help="Last day (YYYY-MM-DD, UTC) or a duration from now (90d, 12h). Default: 30 days.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the token to this new file (mode 0600) instead of printing it.",
)
@click.pass_context
def token_cmd(ctx: click.Context, name: str, expires: str | None, out: Path | None) -> None:
    """Issue an API token for NAME, to use 'tre serve' (shown once; stored only hashed)."""
    from tre.service import tokens

    with session(ctx) as s:
        record, text = tokens.issue_token(s, name, expires=tokens.parse_expiry(expires))
    if out is not None:
        write_secret_file(out, text)
        console.print(f"Token [bold]{record.id}[/] for {name} written to {out} (mode 0600)")
    else:
        click.echo(text)
        err_console.print(f"Token {record.id} for {name}: this is its only copy.")
    err_console.print(
        f"It expires {record.expires_at:%Y-%m-%d %H:%M} UTC. Give it to {name} privately; "
        "they keep it in ~/.config/tre/token (chmod 600) or TRE_TOKEN, never on a command line."
    )


@admin.command("tokens")
@click.argument("name", required=False)
@click.pass_context
def tokens_cmd(ctx: click.Context, name: str | None) -> None:
    """List API tokens (ids, holders and dates; never the tokens), or NAME's."""
    from tre.service import tokens

    with session(ctx) as s:
        found = tokens.list_tokens(s, name)
    table = Table("id", "person", "state", "expires (UTC)", "issued by", "issued (UTC)")
    for t in found:
        table.add_row(
            t.id,
            t.person,
            styled_token_state(tokens.token_state(t)),
            f"{t.expires_at:%Y-%m-%d %H:%M}",
            t.created_by,
            f"{t.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@admin.command("revoke-token")
@click.argument("token_id")
@click.pass_context
def revoke_token_cmd(ctx: click.Context, token_id: str) -> None:
    """Revoke the token TOKEN_ID at once (its browser sessions end too)."""
    from tre.service import tokens

    with session(ctx) as s:
        token = tokens.revoke_token(s, token_id)
    console.print(f"Revoked token [bold]{token.id}[/] of {token.person}")


def styled_token_state(state: str) -> str:
    """A token's state for a table: the word itself, coloured."""
    colour = {"active": "green", "expired": "yellow", "revoked": "red"}.get(state, "white")
    return f"[{colour}]{state}[/]"


def write_secret_file(path: Path, text: str) -> None:
    """Create `path` with mode 0600 and write `text`; never overwrite an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"{path} already exists", fix="choose a new file for --out") from None
    except OSError as exc:
        raise InputError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
