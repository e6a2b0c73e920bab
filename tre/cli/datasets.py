"""`tre dataset ...`: ingest sources into secured Parquet, list and verify the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml
from rich.table import Table

from tre.cli.common import console, err_console, session
from tre.errors import InputError

if TYPE_CHECKING:
    from tre.models import DatasetDescriptor


def register(cli: click.Group) -> None:
    cli.add_command(dataset)


@click.group()
def dataset() -> None:
    """Ingest, list, show and verify datasets."""


@dataset.command("ingest")
@click.argument("name")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--describe",
    "descriptor",
    type=click.Path(path_type=Path),
    help="YAML descriptor: description, and each column's type and sensitivity "
    "(draft one with 'tre dataset describe SOURCE').",
)
@click.option(
    "--partition-by",
    "partition_by",
    multiple=True,
    metavar="COLUMN",
    help="Partition on this attribute column (repeatable). Its values become plaintext "
    "folder names, so sensitive columns are refused.",
)
@click.option(
    "--rows-per-group",
    type=click.IntRange(1000),
    default=1_000_000,
    show_default=True,
    help="Rows per Parquet row group (the unit of work of a job's tasks).",
)
@click.option(
    "--rows-per-file",
    type=click.IntRange(1000),
    default=4_000_000,
    show_default=True,
    help="Most rows per Parquet file.",
)
@click.option("--yes", is_flag=True, help="Without --describe: accept the inferred schema.")
@click.pass_context
def ingest_cmd(
    ctx: click.Context,
    name: str,
    source: Path,
    descriptor: Path | None,
    partition_by: tuple[str, ...],
    rows_per_group: int,
    rows_per_file: int,
    yes: bool,
) -> None:
    """Encrypt SOURCE (.csv, .parquet, or a folder of them) into a new version of
    dataset NAME (admins)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from tre.service import datasets

    with session(ctx) as s:
        described: Path | DatasetDescriptor | None = descriptor
        if descriptor is None:
            inferred = datasets.infer_source(s, source)
            _show_schema(inferred, f"Inferred from {source}")
            err_console.print(
                "[yellow]warning:[/] no --describe file: every column will be an "
                "'attribute' (the least protected class). Declare identifiers and "
                "quasi-identifiers in a descriptor for real data "
                f"(draft one: tre dataset describe {source} --out {name}.yaml)."
            )
            if not yes:
                click.confirm("Ingest with these types?", abort=True, err=True)
            described = inferred
        with Progress(
            TextColumn(f"ingesting {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("rows", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            d = datasets.ingest_dataset(
                s,
                name,
                source,
                descriptor=described,
                progress=progress,
                rows_per_group=rows_per_group,
                rows_per_file=rows_per_file,
                partition_by=partition_by,
            )
    console.print(
        f"Ingested [bold]{d.name}[/] version {d.version}: {d.row_count:,} rows, "
        f"{len(d.columns)} columns, {len(d.files)} file(s), sha256 {d.checksum[:16]}…"
    )


def _show_schema(descriptor: DatasetDescriptor, title: str) -> None:
    table = Table("column", "type", "sensitivity", title=title)
    for c in descriptor.columns:
        table.add_row(c.name, c.type, c.sensitivity.value)
    err_console.print(table)


@dataset.command("describe")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the draft here."
)
@click.pass_context
def describe_cmd(ctx: click.Context, source: Path, out: Path | None) -> None:
    """Draft a descriptor from SOURCE: inferred types, every column an attribute.

    Check the types, set each column's sensitivity (identifier, quasi_identifier or
    attribute), then ingest with --describe.
    """
    from tre.service import datasets

    with session(ctx) as s:
        inferred = datasets.infer_source(s, source)
    text = (
        f"# Drafted by 'tre dataset describe' from {source.name}. Check every type, and set\n"
        "# each column's sensitivity: identifier, quasi_identifier or attribute. Set\n"
        "# 'unit:' to the identifier column each row is about (a person), if there is one.\n"
        + yaml.safe_dump(inferred.model_dump(mode="json", exclude={"name"}), sort_keys=False)
    )
    if out is None:
        click.echo(text, nl=False)
        return
    if out.exists():
        raise InputError(f"{out} already exists", fix="choose another --out, or remove it")
    out.write_text(text)
    console.print(f"Wrote a draft descriptor to {out}: edit it, then ingest with --describe {out}")


@dataset.command("verify")
@click.argument("name")
@click.option("--version", type=click.IntRange(1), help="Only this version (default: all).")
@click.pass_context
def verify_cmd(ctx: click.Context, name: str, version: int | None) -> None:
    """Re-check every file of dataset NAME against the sha256 recorded at ingest (admins)."""
    from tre.service import datasets

    with session(ctx) as s:
        results = datasets.verify_dataset(s, name, version)
    for r in results:
        console.print(f"{r.dataset} v{r.version}: {r.checked} file(s), all match the catalog")


@dataset.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """The catalog: each dataset's newest version."""
    from tre.service import datasets

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
    from tre.service import datasets

    with session(ctx) as s:
        d = datasets.show_dataset(s, name, version)
    console.print(f"[bold]{d.name}[/] v{d.version}: {d.row_count:,} rows. {d.description}")
    if d.unit:
        console.print(f"Each row is about one {d.unit}: disclosure control counts people by it.")
    else:
        console.print(
            "It declares no unit: disclosure control counts its rows as contributors "
            "(set 'unit:' in its descriptor, and ingest a new version)."
        )
    table = Table("column", "type", "sensitivity", "description")
    for c in d.columns:
        table.add_row(c.name, c.type, c.sensitivity.value, c.description)
    console.print(table)
