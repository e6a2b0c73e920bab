"""Benchmark `secured_read`: read + aggregate secured Parquet through the engine's read
path, against polars on a plaintext copy of the same rows, in the same run.

What runs, in order (all inside one scratch folder):

1. `tre.demo.synth.generate` writes synthetic residents (plain Parquet).
2. They are ingested (encrypted: a key per column, encrypted footers) as the service
   ingests them, in 1,000,000-row row groups; the same rows are written as a plaintext
   copy with the same row groups (snappy, as the secured files).
3. A job's cluster is started as the engine starts it (`slurm.clusters.local_cluster`,
   2 workers x 1 core), with a grant for the residents' columns.
4. Three queries, each `group_by(local_authority)`:
   - full scan: every column (len, means of the numbers, max of the texts);
   - 2-column projection: the mean of `gp_visits_last_year`;
   - selective filter: 85+ with COPD (about 0.3% of rows), their count and mean cost.
   Each is timed (best of `repeat`) as
   - polars: `pl.scan_parquet(plaintext copy)...collect()`, every core;
   - engine: one task per fragment on the job's workers, reading as the engine's table
     step does, with `jobs.frames.read_fragment_frame`: pyarrow with grouping keys as
     dictionaries when there is no filter; with a filter, handed to the read
     (`where=`: polars reads with the data keys and keeps matching rows only while
     reading); then the partial aggregate in polars; partials merged here;
   - polars read: polars' read always, filter or not (to compare the two readers).
   Results are checked against polars'.
5. Where the time goes: each reader alone, serially in this process, over every
   fragment: pyarrow on the secured files, polars on the secured files, polars and
   pyarrow on the plaintext copy; and a round of empty tasks on the cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from rich.console import Console

from bench.secured_read_report import NAME, render  # noqa: F401 - run.py finds both here
from jobs.frames import read_fragment_frame
from slurm.clusters import local_cluster
from tre.demo.synth import descriptor_path, generate
from tre.keys.grants import make_grant, sign_grant
from tre.keys.keysystems import open_master_keys
from tre.keys.kms import keys_for
from tre.keys.masterkeys import KmsSettings
from tre.models import Dataset, Resources
from tre.secured.frames import read_frame
from tre.secured.ingest import ingest, read_descriptor
from tre.secured.reader import Fragment, SecuredSource, fragments, read_fragment

DATASET = "residents"
ROWS_PER_GROUP = 1_000_000
KEY = "local_authority"


@dataclass(frozen=True)
class Query:
    """One read + aggregate: group by KEY, sums/counts of `numbers`, max of `texts`."""

    name: str
    about: str
    numbers: tuple[str, ...]
    texts: tuple[str, ...] = ()
    where: pl.Expr | None = None

    @property
    def columns(self) -> list[str]:
        named = [KEY, *self.numbers, *self.texts]
        if self.where is not None:
            named += self.where.meta.root_names()
        return sorted(set(named))

    def partial(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Mergeable aggregates of one fragment."""
        if self.where is not None:
            frame = frame.filter(self.where)
        return (
            frame.group_by(KEY)
            .agg(
                pl.len().alias("n"),
                *(pl.col(c).cast(pl.Float64).sum().alias(f"sum_{c}") for c in self.numbers),
                *(pl.col(c).count().alias(f"count_{c}") for c in self.numbers),
                *(pl.col(c).cast(pl.String).max().alias(f"max_{c}") for c in self.texts),
            )
            .with_columns(pl.col(KEY).cast(pl.String))
        )

    def merge(self, parts: list[pl.DataFrame]) -> pl.DataFrame:
        """Partials into the final table (n, means, maxes by KEY)."""
        merged = (
            pl.concat(parts)
            .group_by(KEY)
            .agg(
                pl.col("n").sum(),
                *(pl.col(f"sum_{c}").sum() for c in self.numbers),
                *(pl.col(f"count_{c}").sum() for c in self.numbers),
                *(pl.col(f"max_{c}").max() for c in self.texts),
            )
        )
        return merged.select(
            KEY,
            "n",
            *((pl.col(f"sum_{c}") / pl.col(f"count_{c}")).alias(f"mean_{c}") for c in self.numbers),
            *(pl.col(f"max_{c}").alias(f"max_{c}") for c in self.texts),
        ).sort(KEY)

    def polars(self, plain: Path) -> pl.DataFrame:
        """The same query on the plaintext copy, as a person would write it."""
        frame = pl.scan_parquet(plain)
        if self.where is not None:
            frame = frame.filter(self.where)
        return (
            frame.group_by(KEY)
            .agg(
                pl.len().alias("n"),
                *(pl.col(c).cast(pl.Float64).mean().alias(f"mean_{c}") for c in self.numbers),
                *(pl.col(c).max().alias(f"max_{c}") for c in self.texts),
            )
            .sort(KEY)
            .collect()
        )


NUMBERS = (
    "deprivation_decile",
    "ltc_count",
    "has_diabetes",
    "has_copd",
    "has_depression",
    "gp_visits_last_year",
    "social_care_cost_gbp",
)
QUERIES = (
    Query("full_scan", "every column", NUMBERS, ("resident_id", "ward", "age_band", "sex")),
    Query("projection", "2 columns", ("gp_visits_last_year",)),
    Query(
        "selective_filter",
        "age_band == '85+' and has_copd (about 0.3% of rows)",
        ("social_care_cost_gbp",),
        where=(pl.col("age_band") == "85+") & pl.col("has_copd"),
    ),
)


def fragment_partial(
    source: SecuredSource, fragment: Fragment, query: Query, pushdown: bool
) -> pl.DataFrame:
    """Runs on a worker: read one fragment as the engine does, then aggregate it.

    Without `pushdown`, exactly the engine's read (`jobs.table_step.table_partials`): the
    filter, if any, goes into the read. With `pushdown`, polars' read, filter or not.
    """
    if pushdown:
        frame = read_frame(source, fragment, query.columns, query.where)
    else:
        frame = read_fragment_frame(
            source, fragment, query.columns, categorical=[KEY], where=query.where
        )
    return query.partial(frame)


def fragments_partial(source: SecuredSource, parts: list[Fragment], query: Query) -> pl.DataFrame:
    """Runs on a worker: several fragments in one task (polars reads); their partials."""
    return pl.concat([fragment_partial(source, p, query, True) for p in parts])


def _noop(fragment: Fragment) -> int:
    return fragment.rows


def _best(action: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return round(min(times), 4), [round(t, 4) for t in times], result


def _interleaved(
    actions: dict[str, Callable[[], Any]], repeat: int
) -> dict[str, tuple[float, list[float], Any]]:
    """Time each action `repeat` times, taking turns, so load from elsewhere on the
    machine falls on all of them alike; (best, every run, last result) per action."""
    runs: dict[str, list[float]] = {name: [] for name in actions}
    results: dict[str, Any] = {}
    for _ in range(repeat):
        for name, action in actions.items():
            started = time.perf_counter()
            results[name] = action()
            runs[name].append(round(time.perf_counter() - started, 4))
    return {name: (min(runs[name]), runs[name], results[name]) for name in actions}


def _agree(ours: pl.DataFrame, theirs: pl.DataFrame) -> bool:
    if ours.columns != theirs.columns or ours[KEY].to_list() != theirs[KEY].to_list():
        return False
    for column in ours.columns:
        a, b = ours[column], theirs[column]
        if a.dtype.is_numeric() and column != "n":
            if ((a - b).abs() > 1e-9 * (b.abs() + 1)).any():
                return False
        elif a.cast(pl.String).to_list() != b.cast(pl.String).to_list():
            return False
    return True


def _setup(work: Path, rows: int, seed: int) -> tuple[SecuredSource, Path, dict[str, Any]]:
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    sources = generate(work / "sources", rows=rows, seed=seed)
    figures["generate_s"] = round(time.perf_counter() - started, 3)
    keys_root, data_root = work / "keys", work / "data"
    keys_root.mkdir(mode=0o700)
    data_root.mkdir(mode=0o700)
    started = time.perf_counter()
    dataset: Dataset = ingest(
        keys_root=keys_root,
        data_root=data_root,
        name=DATASET,
        version=1,
        source=sources[DATASET],
        descriptor=read_descriptor(descriptor_path(DATASET)),
        ingested_by="bench",
        rows_per_group=ROWS_PER_GROUP,
    )
    seconds = time.perf_counter() - started
    figures["ingest"] = {"seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}
    plain = work / "plain" / f"{DATASET}.parquet"
    plain.parent.mkdir()
    pq.write_table(pq.read_table(sources[DATASET]), plain, row_group_size=ROWS_PER_GROUP)
    settings = KmsSettings.local(keys_root)
    columns = dataset.column_names
    grant = make_grant(holder="benchmark", keys=keys_for(DATASET, columns), lifetime=6 * 3600)
    source = SecuredSource.from_dataset(
        data_root=data_root,
        keys_root=keys_root,
        dataset=dataset,
        granted=columns,
        token=sign_grant(grant, open_master_keys(settings)),
    )
    figures["files"], figures["fragments"] = len(dataset.files), len(fragments(source))
    return source, plain, figures


def _readers(source: SecuredSource, plain: Path, query: Query, repeat: int) -> dict[str, float]:
    """Each reader alone over every fragment, serially in this process (no aggregation)."""
    parts = fragments(source)
    columns = query.columns
    plain_file = pq.ParquetFile(plain)

    def pyarrow_secured() -> None:
        for part in parts:
            read_fragment(source, part, columns, dictionary=[KEY])

    def polars_secured() -> None:
        for part in parts:
            read_frame(source, part, columns, query.where)

    whole_files = fragments(source, target_rows=max(sum(g) for _, g in source.files))

    def polars_secured_files() -> None:
        for part in whole_files:
            read_frame(source, part, columns, query.where)

    def polars_plain() -> None:
        frame = pl.scan_parquet(plain).select(columns)
        if query.where is not None:
            frame = frame.filter(query.where)
        frame.collect()

    def pyarrow_plain() -> None:
        for group in range(plain_file.num_row_groups):
            plain_file.read_row_group(group, columns=columns)

    return {
        name: _best(action, repeat)[0]
        for name, action in (
            ("pyarrow_secured_s", pyarrow_secured),
            ("polars_secured_s", polars_secured),
            ("polars_secured_files_s", polars_secured_files),
            ("pyarrow_plain_s", pyarrow_plain),
            ("polars_plain_s", polars_plain),
        )
    }


def _query(
    query: Query,
    source: SecuredSource,
    plain: Path,
    client: Any,
    pool: ThreadPoolExecutor,
    repeat: int,
) -> dict[str, Any]:
    parts = fragments(source)

    def engine(pushdown: bool) -> pl.DataFrame:
        futures = [
            client.submit(fragment_partial, source, p, query, pushdown, pure=False) for p in parts
        ]
        return query.merge(client.gather(futures))

    workers = len(client.scheduler_info()["workers"])
    batches = [batch for i in range(workers) if (batch := parts[i::workers])]

    def batched() -> pl.DataFrame:
        futures = [
            client.submit(fragments_partial, source, batch, query, pure=False) for batch in batches
        ]
        return query.merge(client.gather(futures))

    whole_files = fragments(source, target_rows=max(sum(g) for _, g in source.files))

    def file_tasks() -> pl.DataFrame:
        futures = [
            client.submit(fragment_partial, source, p, query, True, pure=False) for p in whole_files
        ]
        return query.merge(client.gather(futures))

    def no_cluster() -> pl.DataFrame:
        return query.merge(
            list(pool.map(lambda p: fragment_partial(source, p, query, True), parts))
        )

    timed = _interleaved(
        {
            "polars": lambda: query.polars(plain),
            "engine": lambda: engine(False),
            "polars_read": lambda: engine(True),
            "batched": batched,
            "file_tasks": file_tasks,
            "no_cluster": no_cluster,
        },
        repeat,
    )
    polars_s, _, expected = timed["polars"]
    entry: dict[str, Any] = {
        "about": query.about,
        "columns": len(query.columns),
        "matching_rows": int(expected["n"].sum()),
        "agree": all(_agree(timed[n][2], expected) for n in timed if n != "polars"),
        "runs": {name: runs for name, (_, runs, _) in timed.items()},
    }
    for name, (best, _, _) in timed.items():
        entry[f"{name}_s"] = best
        if name != "polars":
            entry[f"ratio_{name}"] = round(best / polars_s, 2)
    entry["readers"] = _readers(source, plain, query, repeat)
    return entry


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    """Run the benchmark in `work` (empty or absent); return every figure."""
    console.print(f"[dim]{NAME}: generating and ingesting {rows:,} residents[/]")
    source, plain, figures = _setup(work, rows, seed)
    figures.update({"benchmark": NAME, "rows": rows, "repeat": repeat, "seed": seed})
    resources = Resources(workers=2, cores=1, memory="4GiB")
    figures["cluster"] = resources.describe()
    parts = fragments(source)
    with (
        local_cluster(resources, work / "scratch") as client,
        ThreadPoolExecutor(resources.workers) as pool,
    ):
        client.gather([client.submit(_noop, p, pure=False) for p in parts])  # warm
        figures["empty_tasks_s"] = _best(
            lambda: client.gather([client.submit(_noop, p, pure=False) for p in parts]), repeat
        )[0]
        figures["queries"] = {}
        for query in QUERIES:
            console.print(f"[dim]{NAME}: {query.name} ({query.about})[/]")
            figures["queries"][query.name] = _query(query, source, plain, client, pool, repeat)
    return figures
