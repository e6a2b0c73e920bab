"""`tre keys ...`: master keys and key grants (admins). Key bytes are never shown."""

from __future__ import annotations

import pwd
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from tre.cli.common import console, err_console, home_option, session
from tre.errors import PlatformError

if TYPE_CHECKING:
    from tre.home import Home

# tre.keys.masterkeys.KINDS, written out: that module loads cryptography, which
# `tre --help` needs none of (tests/tre/cli/test_imports.py checks the two agree).
KMS_KINDS = ("local", "pkcs11")


def register(cli: click.Group) -> None:
    cli.add_command(keys)


@click.group()
def keys() -> None:
    """Master keys (list, rotate, destroy old versions), key grants, and where keys live."""


@keys.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Every master key: what it protects, its versions, and the files each version wraps
    (for the grant-signing key: the active grants each version signed)."""
    from tre.service import keys as key_service

    with session(ctx) as s:
        found = key_service.list_keys(s)
        kind = s.home.config.kms
    table = Table("key id", "protects", "versions", "current", "in use, per version")
    for info in found:
        usage = ", ".join(f"v{v}: {n} {info.unit}" for v, n in info.in_use.items()) or "none"
        table.add_row(
            info.key_id,
            info.protects,
            ", ".join(f"v{v}" for v in info.versions),
            f"v{info.current}",
            usage,
        )
    console.print(table)
    console.print(f"{len(found)} master key(s) in the {kind} key store.")


@keys.command("rotate")
@click.option("--dataset", help="Rotate the keys of this dataset (its footers and columns).")
@click.option("--key", "key_id", help="Rotate this one key (an id from 'tre keys list').")
@click.option(
    "--all", "all_keys", is_flag=True, help="Rotate every key, the grant-signing key included."
)
@click.pass_context
def rotate_cmd(ctx: click.Context, dataset: str | None, key_id: str | None, all_keys: bool) -> None:
    """Add a new version of master keys and re-wrap every file's key material with it.

    Data files are not rewritten. Old versions stay until you destroy them. The
    grant-signing key (--key tre.grant-signing) signs new grants with its new version;
    grants already issued keep working until they end.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tre.service import keys as key_service

    if sum(map(bool, (dataset, key_id, all_keys))) != 1:
        raise click.UsageError("give exactly one of --dataset NAME, --key ID or --all")
    with (
        session(ctx) as s,
        Progress(
            TextColumn("re-wrapping key material"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("files", total=None)
        done = key_service.rotate_keys(
            s,
            dataset=dataset,
            key_id=key_id,
            progress=lambda n, total: bar.update(task, completed=n, total=total),
        )
    for key, (old, new) in done.versions.items():
        console.print(f"  {key}: v{old} -> v{new}")
    console.print(
        f"Rotated {len(done.versions)} key(s); re-wrapped the key material of {done.files} "
        "file(s). Old versions can be destroyed: tre keys destroy KEY --version N"
    )


@keys.command("destroy")
@click.argument("key_id")
@click.option("--version", type=click.IntRange(1), required=True, help="The old version.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def destroy_cmd(ctx: click.Context, key_id: str, version: int, yes: bool) -> None:
    """Destroy an old version of KEY_ID (refused while any file still needs it)."""
    from tre.service import keys as key_service

    if not yes:
        click.confirm(
            f"Destroy version {version} of {key_id} for good? Backups of it must go too",
            abort=True,
        )
    with session(ctx) as s:
        key_service.destroy_version(s, key_id, version)
    console.print(f"Destroyed version {version} of [bold]{key_id}[/].")


@keys.command("grants")
@click.option("--project", help="Only this project's grants.")
@click.option("--active", is_flag=True, help="Only grants that can still be used.")
@click.pass_context
def grants_cmd(ctx: click.Context, project: str | None, active: bool) -> None:
    """Key grants issued to jobs (and by hand): who, which keys, until when, and why ended."""
    from tre.models import utcnow
    from tre.service import grants

    with session(ctx) as s:
        found = grants.list_grants(s, project=project, active=active)
    now = utcnow()
    table = Table("grant", "holder", "project", "columns", "expires", "state")
    for g in found:
        columns = "; ".join(
            f"{n} v{d['version']}: {len(d['columns'])}" for n, d in g.datasets.items()
        )
        if g.revoked_at is not None:
            state = f"[red]revoked[/] {g.revoked_reason}"
        elif not g.active(now):
            state = "[dim]expired[/]"
        else:
            state = "[green]active[/]"
        table.add_row(
            g.id, g.holder, g.project or "-", columns, f"{g.expires_at:%Y-%m-%d %H:%M}", state
        )
    console.print(table)


@keys.command("revoke")
@click.argument("grant_id")
@click.option("--reason", required=True)
@click.pass_context
def revoke_cmd(ctx: click.Context, grant_id: str, reason: str) -> None:
    """Revoke a key grant now: its job fails at its next read, with the reason."""
    from tre.service import grants

    with session(ctx) as s:
        g = grants.revoke(s, grant_id, reason)
    console.print(f"Grant {g.id} ({g.holder}) is revoked: {g.revoked_reason}")


@keys.command("configure")
@click.option("--kms", "kind", type=click.Choice(KMS_KINDS), required=True)
@click.option("--module", help="PKCS#11: the HSM's library, e.g. /usr/lib/softhsm/libsofthsm2.so")
@click.option("--token", help="PKCS#11: the label of the token holding tre's keys.")
@click.option(
    "--pin-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PKCS#11: a 0600 file holding the token's user PIN.",
)
@click.option(
    "--hsm-path",
    "hsm_paths",
    multiple=True,
    help="PKCS#11: a folder the HSM's client needs (its configuration, its token store), "
    "shown to the key service's sandbox; SoftHSM's are found without it. Repeatable.",
)
@click.pass_context
def configure_cmd(
    ctx: click.Context,
    kind: str,
    module: str | None,
    token: str | None,
    pin_file: Path | None,
    hsm_paths: tuple[str, ...],
) -> None:
    """Choose where master keys live (before the first ingest); tested before saving."""
    from tre.service import keys as key_service

    with session(ctx) as s:
        key_service.configure_kms(
            s, kind, module=module, token=token, pin_file=pin_file, hsm_paths=hsm_paths
        )
        settings = s.home.backing_kms_settings()  # where they are, whoever opens them
        served = s.home.config.isolation == "sandbox"
    where = (
        f"PKCS#11 token {settings.pkcs11_token!r} via {settings.pkcs11_module}"
        if settings.kind == "pkcs11"
        else f"the local key store {settings.keys_root}"
    )
    console.print(f"Master keys now live in {where}.")
    if served:
        console.print("Only the key service opens them (it was restarted to use them).")


@keys.group("service")
def service_group() -> None:
    """The key service: the one process holding this home's keys (docs/keys.md)."""


def _home(ctx: click.Context) -> Home:
    from tre.home import Home

    home = Home.open(home_option(ctx))
    if home.config.isolation != "sandbox":
        raise PlatformError(
            f"the home at {home.root} is not sandboxed (isolation: none): its processes "
            "open the keys themselves and it has no key service",
            fix="make a sandboxed home with 'tre init' (the default)",
        )
    return home


@service_group.command("status")
@click.pass_context
def service_status(ctx: click.Context) -> None:
    """Whether the key service answers, and as which user."""
    from tre.keyservice import process as keyservice
    from tre.keyservice.gateway_process import gateway_running

    home = _home(ctx)
    if not keyservice.is_running(home):
        console.print(f"The key service of {home.root} is not running.")
    else:
        info = keyservice.ensure_running(home).ping()
        user = pwd.getpwuid(int(info["uid"])).pw_name
        console.print(
            f"The key service answers at {home.key_socket} (pid {info['pid']}, user {user})."
        )
    gateway = gateway_running(home)
    if gateway is None:
        console.print("No key gateway runs (one starts when a job on another node needs it).")
    else:
        console.print(f"Its key gateway listens at {gateway[1]} (pid {gateway[0]}), mutual TLS.")


@service_group.command("start")
@click.pass_context
def service_start(ctx: click.Context) -> None:
    """Start it in the background, if it is not running."""
    from tre.keyservice import process as keyservice

    home = _home(ctx)
    keyservice.ensure_running(home)
    console.print(f"The key service answers at {home.key_socket}.")


@service_group.command("stop")
@click.pass_context
def service_stop(ctx: click.Context) -> None:
    """Stop it, and its key gateway (tre starts them again when they are needed)."""
    from tre.keyservice import process as keyservice
    from tre.keyservice.gateway_process import stop_gateway

    home = _home(ctx)
    if stop_gateway(home):
        console.print("Stopped the key gateway.")
    stopped = keyservice.stop(home)
    console.print("Stopped the key service." if stopped else "The key service was not running.")


@service_group.command("serve")
@click.pass_context
def service_serve(ctx: click.Context) -> None:
    """Run it in the foreground until stopped (what the systemd unit runs, as root: it
    hands the key store over and runs the service as tre-keys)."""
    from tre.keyservice import process as keyservice

    home = _home(ctx)
    if keyservice.is_running(home):
        raise PlatformError("the key service of this home is already running", fix="stop it first")
    process = keyservice.start(home, idle_exit=0, log_to_stdout=True)

    def forward(signum: int, frame: object) -> None:
        process.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    raise SystemExit(process.wait())
