"""`tre dataset ...`: ingest sources into secured Parquet, list the catalog."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tre.cli.common import console, err_console, session
from tre.service import datasets


def register(cli: click.Group) -> None:
    cli.add_command(dataset)


@click.group()
def dataset() -> None:
    """Ingest and list datasets."""


@dataset.command("ingest")
@click.argument("name")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--describe",
    "descriptor",
    type=click.Path(path_type=Path),
    help="YAML descriptor: description, and each column's type and sensitivity.",
)
@click.option(
    "--rows-per-group",
    type=click.IntRange(1000),
    default=1_000_000,
    show_default=True,
    help="Rows per Parquet row group (the unit of work of a job's tasks).",
)
@click.pass_context
def ingest_cmd(
    ctx: click.Context, name: str, source: Path, descriptor: Path | None, rows_per_group: int
) -> None:
    """Encrypt SOURCE (.csv or .parquet) into a new version of dataset NAME (admins)."""
    if descriptor is None:
        err_console.print(
            "[yellow]warning:[/] no --describe file: column types are inferred and "
            "every column is treated as an 'attribute'. Declare identifiers and "
            "quasi-identifiers in a descriptor for real data."
        )
    with (
        session(ctx) as s,
        Progress(
            TextColumn(f"ingesting {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("rows", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        d = datasets.ingest_dataset(
            s, name, source, descriptor=descriptor, progress=progress, rows_per_group=rows_per_group
        )
    console.print(
        f"Ingested [bold]{d.name}[/] version {d.version}: {d.row_count:,} rows, "
        f"{len(d.columns)} columns, {len(d.files)} file(s), sha256 {d.checksum[:16]}…"
    )


@dataset.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """The catalog: each dataset's newest version."""
    with session(ctx) as s:
        found = datasets.list_datasets(s)
    table = Table("name", "version", "rows", "columns", "ingested", "sha256")
    for d in found:
        table.add_row(
            d.name,
            str(d.version),
            f"{d.row_count:,}",
            str(len(d.columns)),
            d.ingested_at.date().isoformat(),
            d.checksum[:16] + "…",
        )
    console.print(table)


@dataset.command("show")
@click.argument("name")
@click.option("--version", type=int)
@click.pass_context
def show_cmd(ctx: click.Context, name: str, version: int | None) -> None:
    """A dataset's columns, types and sensitivity (never its data)."""
    with session(ctx) as s:
        d = datasets.show_dataset(s, name, version)
    console.print(f"[bold]{d.name}[/] v{d.version}: {d.row_count:,} rows. {d.description}")
    table = Table("column", "type", "sensitivity", "description")
    for c in d.columns:
        table.add_row(c.name, c.type, c.sensitivity.value, c.description)
    console.print(table)
