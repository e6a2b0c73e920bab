"""`tre backup create|verify|restore`: consistent backups of a TRE home (admins)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tre.cli.common import console, err_console, session

if TYPE_CHECKING:
    from tre.service.backup import BackupCheck


def register(cli: click.Group) -> None:
    cli.add_command(backup)


@click.group()
def backup() -> None:
    """Back up a TRE home, check a backup, restore one (admins, on the TRE host)."""


@backup.command("create")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--no-data",
    is_flag=True,
    help="Leave out the secured data (data/), e.g. when it is backed up on its own.",
)
@click.pass_context
def create_cmd(ctx: click.Context, dest: Path, no_data: bool) -> None:
    """Write a backup of the home to the new folder DEST, while the service may run.

    The state database is copied as one consistent snapshot; every file's sha256 goes
    in DEST/backup.json. The backup holds keys and data together: keep it as safe as
    the home itself.
    """
    from tre.service.backup import backup_home

    with session(ctx) as s:
        result = backup_home(
            s, dest, include_data=not no_data, progress=lambda step: err_console.print(step)
        )
    size = result.bytes / 1024**2
    console.print(
        f"Backed up to {result.path}: {result.files} file(s), {size:.1f} MiB, "
        f"{result.audit_events} audit events.",
        markup=False,
    )
    if not result.data_included:
        console.print("The secured data (data/) was left out: back it up on its own.")
    if result.kms != "local":
        console.print(
            f"Master keys are in the {result.kms} key store, not in this backup: back them "
            "up with the HSM's own tools, or the data cannot be read after a restore."
        )


def describe_time(text: str) -> str:
    """A manifest time as people read it."""
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return text


def _report(check: BackupCheck) -> int:
    if check.ok:
        manifest = check.manifest
        console.print(
            f"[green]backup intact[/]: {len(manifest['files']) + 1} file(s), taken "
            f"{describe_time(manifest['created_at'])} by {manifest['created_by']} "
            f"(tre {manifest['tre']}); audit log and keys verified"
        )
        return 0
    err_console.print(
        f"[bold red]backup NOT intact[/]: {len(check.problems)} problem(s) in {check.path}"
    )
    for problem in check.problems[:50]:
        err_console.print(f"  - {problem}", markup=False)
    if len(check.problems) > 50:
        err_console.print(f"  ... and {len(check.problems) - 50} more")
    return 1


@backup.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
def verify_cmd(path: Path) -> int:
    """Check the backup at PATH: every file against its sha256, the audit log's chain,
    and that the key store holds every key version the data needs."""
    from tre.service.backup import verify_backup

    return _report(verify_backup(path))


@backup.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
def restore_cmd(path: Path, target: Path) -> None:
    """Verify the backup at PATH, then make the new folder TARGET a TRE home from it."""
    from tre.service.backup import restore_home

    restore_home(path, target)
    console.print(
        f"Restored into {target.absolute()}. Next: 'tre --home {target} audit verify' and "
        f"'tre --home {target} dataset verify NAME' for each dataset. Jobs that were "
        "running at the backup cannot finish here: the dispatcher fails them; submit "
        "them again.",
        markup=False,
    )
