"""Synthetic Liverpool City Region civic data for the demo: the sources an admin ingests.

Three linked datasets, written as plain (unencrypted) Parquet whose columns match the
packaged descriptors in `tre/demo/datasets/*.yaml` exactly:

    residents        one row per person (`rows` of them)
    fire_incidents   about rows/20, linked to residents at dwelling incidents
    early_help       about rows/15, linked to the child referred

Generation runs in chunks of residents; each chunk has its own random stream derived
from (seed, chunk, dataset) and writes one row group per dataset, so memory stays flat
at any size and the same seed and row count give the same bytes on every machine.

    python -m tre.demo.synth OUT_DIR --rows 20000 --seed 7 [--force]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tre import yamlfile
from tre.demo.early_help import make_early_help
from tre.demo.fire_incidents import make_fire_incidents
from tre.demo.geography import ward_table
from tre.demo.pseudonyms import keyring
from tre.demo.residents import make_residents
from tre.errors import InputError, NotFound, PlatformError, TreError
from tre.models import DatasetDescriptor

__all__ = [
    "DATASETS",
    "MAX_ROWS",
    "MIN_ROWS",
    "arrow_schema",
    "dataset_rows",
    "descriptor_path",
    "generate",
    "load_descriptor",
    "main",
]

DATASETS = ("residents", "fire_incidents", "early_help")
MIN_ROWS = 100
MAX_ROWS = 200_000_000  # ~2 GB of Parquet in a few minutes: more than any demo needs
#: Residents per chunk: a few hundred MB of working memory, one row group per chunk.
CHUNK_ROWS = 500_000
#: Residents per row of each linked dataset, and the fewest rows it gets, so even a
#: small demo has a few hundred incidents and referrals to tabulate.
_PER_RESIDENT = {"fire_incidents": 20, "early_help": 15}
MIN_LINKED_ROWS = 300
_COMPRESSION = "zstd"

# Arrow type strings a descriptor may use, as pyarrow prints them.
_ARROW_TYPES: dict[str, pa.DataType] = {
    str(t): t
    for t in (
        pa.string(),
        pa.large_string(),
        pa.bool_(),
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.float32(),
        pa.float64(),
        pa.date32(),
    )
}

Progress = Callable[[str, int, int], None]


def descriptor_path(name: str) -> Path:
    """The packaged YAML descriptor of demo dataset `name` (tre/demo/datasets/<name>.yaml)."""
    if name not in DATASETS:
        raise NotFound(
            f"there is no demo dataset called {name!r}",
            fix=f"use one of: {', '.join(DATASETS)}",
        )
    return Path(__file__).with_name("datasets") / f"{name}.yaml"


def load_descriptor(name: str) -> DatasetDescriptor:
    """The descriptor of demo dataset `name`, validated."""
    path = descriptor_path(name)
    try:
        return DatasetDescriptor.model_validate(yamlfile.load(path.read_bytes(), str(path)))
    except (OSError, ValueError) as exc:  # a YamlError is a ValueError
        raise PlatformError(
            f"the packaged descriptor {path} cannot be read: {exc}",
            fix="reinstall tre; the package data is damaged",
        ) from exc


def arrow_schema(descriptor: DatasetDescriptor) -> pa.Schema:
    """The Arrow schema a descriptor declares: its column names, order and types."""
    unknown = [f"{c.name}: {c.type}" for c in descriptor.columns if c.type not in _ARROW_TYPES]
    if unknown:
        raise InputError(
            f"descriptor {descriptor.name!r} uses Arrow types this generator cannot write",
            reasons=unknown,
            fix=f"use one of: {', '.join(_ARROW_TYPES)}",
        )
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in descriptor.columns])


def dataset_rows(rows: int) -> dict[str, int]:
    """How many rows each dataset gets for `rows` residents."""
    counts = {"residents": rows}
    for name, per in _PER_RESIDENT.items():
        counts[name] = max(rows // per, MIN_LINKED_ROWS)
    return counts


def _argument_problems(rows: int, seed: int) -> list[str]:
    problems = []
    if not MIN_ROWS <= rows <= MAX_ROWS:
        problems.append(
            f"--rows {rows:,} is outside {MIN_ROWS:,}..{MAX_ROWS:,} (the number of residents)"
        )
    if seed < 0:
        problems.append(f"--seed {seed} is negative: use 0 or a positive whole number")
    return problems


def _chunks(total: int, rows: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of each chunk, in the same proportions as the residents' chunks."""
    n_chunks = (rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    # Equal chunks rather than full ones and a remainder: no chunk is ever tiny.
    bounds = [rows * k // n_chunks for k in range(n_chunks + 1)]
    for lo, hi in itertools.pairwise(bounds):
        yield total * lo // rows, total * hi // rows


def _stream(seed: int, chunk: int, dataset: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk, dataset)))


def generate(
    out_dir: Path,
    *,
    rows: int = 20_000,
    seed: int = 7,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Write out_dir/<dataset>.parquet for every dataset and return {name: path}.

    `rows` is the number of residents. Existing files of the same names are replaced
    (atomically, once all three are written); `progress(dataset, done, total)` is
    called after every chunk.
    """
    problems = _argument_problems(rows, seed)
    if problems:
        raise InputError(
            "cannot generate the demo data",
            reasons=problems,
            fix=f"choose rows between {MIN_ROWS:,} and {MAX_ROWS:,} and a seed >= 0",
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(
            f"{out_dir} is a file, not a folder",
            fix="give a folder (new or existing) to write the datasets into",
        )
    schemas = {name: arrow_schema(load_descriptor(name)) for name in DATASETS}
    final = {name: out_dir / f"{name}.parquet" for name in DATASETS}
    partial = {name: out_dir / f".{name}.parquet.partial" for name in DATASETS}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write(seed, rows, schemas, partial, progress)
        # Only a complete set replaces the old files; a failure leaves them as they were.
        for name in DATASETS:
            os.replace(partial[name], final[name])
    except OSError as exc:
        raise InputError(
            f"cannot write the demo data to {out_dir}: {exc.strerror or exc}",
            fix="choose a folder you may write to, on a disk with room for the files",
        ) from exc
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)
    return final


def _write(
    seed: int,
    rows: int,
    schemas: dict[str, pa.Schema],
    paths: dict[str, Path],
    progress: Progress | None,
) -> None:
    """Generate chunk after chunk, appending one row group per chunk to each file."""
    totals = dataset_rows(rows)
    with ExitStack() as stack:
        writers = {
            name: stack.enter_context(
                pq.ParquetWriter(paths[name], schemas[name], compression=_COMPRESSION)
            )
            for name in DATASETS
        }
        # One helper thread draws the next chunk while this one writes the last: numpy
        # and Parquet both release the GIL. Chunks are independent, so order is kept.
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        plan = _plan(rows)
        pending = pool.submit(_chunk_columns, seed, 0, plan[0])
        for chunk, spans in enumerate(plan):
            columns = pending.result()
            if chunk + 1 < len(plan):
                pending = pool.submit(_chunk_columns, seed, chunk + 1, plan[chunk + 1])
            for name in DATASETS:
                writers[name].write_table(_table(name, columns[name], schemas[name]))
                if progress is not None:
                    progress(name, spans[name][1], totals[name])


def _plan(rows: int) -> list[dict[str, tuple[int, int]]]:
    """Each chunk's (start, stop) rows in every dataset."""
    totals = dataset_rows(rows)
    per_dataset = [list(_chunks(totals[name], rows)) for name in DATASETS]
    return [dict(zip(DATASETS, spans, strict=True)) for spans in zip(*per_dataset, strict=True)]


def _chunk_columns(
    seed: int, chunk: int, spans: dict[str, tuple[int, int]]
) -> dict[str, dict[str, pa.Array]]:
    """Every dataset's columns for one chunk; the linked rows come from its residents."""
    wards = ward_table()
    keys = {name: keyring(seed, stream) for stream, name in enumerate(DATASETS)}
    streams = {name: _stream(seed, chunk, stream) for stream, name in enumerate(DATASETS)}
    (r0, r1), (f0, f1), (e0, e1) = (spans[name] for name in DATASETS)
    residents = make_residents(streams["residents"], r0, r1 - r0, wards)
    fires = make_fire_incidents(
        streams["fire_incidents"], f0, f1 - f0, residents, wards,
        keys["fire_incidents"], keys["residents"],
    )  # fmt: skip
    referrals = make_early_help(
        streams["early_help"], e0, e1 - e0, residents, wards,
        keys["early_help"], keys["residents"],
    )  # fmt: skip
    return {
        "residents": residents.columns(wards, keys["residents"]),
        "fire_incidents": fires,
        "early_help": referrals,
    }


def _table(name: str, columns: dict[str, pa.Array], schema: pa.Schema) -> pa.Table:
    """The generated columns in the descriptor's order and types."""
    if set(columns) != set(schema.names):
        raise PlatformError(
            f"the {name} generator and its descriptor disagree on the columns",
            reasons=[
                f"generated only: {sorted(set(columns) - set(schema.names))}",
                f"described only: {sorted(set(schema.names) - set(columns))}",
            ],
            fix="a bug in tre.demo: keep the generator and datasets/*.yaml in step",
        )
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in schema], schema=schema)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tre.demo.synth",
        description="Write synthetic Liverpool City Region datasets (residents, "
        "fire_incidents, early_help) as Parquet, for the tre demo.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write <dataset>.parquet into")
    parser.add_argument(
        "--rows",
        type=int,
        default=20_000,
        help=f"number of residents, {MIN_ROWS:,}..{MAX_ROWS:,} (default 20,000)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=7,
        help="random seed; the same seed and rows give the same files (default 7)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the datasets if OUT_DIR already has them"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code (2 for bad arguments)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the problem
        return int(exc.code or 0)
    try:
        problems = _argument_problems(args.rows, args.seed)
        if args.out_dir.exists() and not args.out_dir.is_dir():
            problems.append(f"OUT_DIR {args.out_dir} is a file, not a folder")
        elif not args.force:
            problems += [
                f"{path} already exists (pass --force to overwrite it)"
                for name in DATASETS
                if (path := args.out_dir / f"{name}.parquet").exists()
            ]
        if problems:
            raise InputError(
                "cannot generate the demo data",
                reasons=problems,
                fix="correct the options above, or see --help",
            )
        paths = generate(args.out_dir, rows=args.rows, seed=args.seed)
    except TreError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    for name, path in paths.items():
        print(f"{name:<15} {pq.read_metadata(path).num_rows:>12,} rows  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
