"""Small helpers over a distributed Client: reductions that stay on the workers, and
waiting on tasks with progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from distributed import Client, Future, as_completed

ProgressFn = Callable[[str, int, int], None]


def tree_reduce(
    client: Client,
    futures: Sequence[Future],
    combine: Callable[..., Any],
    *args: Any,
    fan_in: int = 8,
) -> Future:
    """Combine futures pairwise-ish on the workers until one is left.

    `combine(list_of_values, *args)` must be associative; the intermediate results never
    leave the cluster, only the caller decides what to gather.
    """
    level = list(futures)
    if not level:
        raise ValueError("tree_reduce needs at least one future")
    while len(level) > 1:
        level = [
            client.submit(combine, level[i : i + fan_in], *args, pure=False)
            for i in range(0, len(level), fan_in)
        ]
    return level[0]


def track(futures: Sequence[Future], label: str, progress: ProgressFn | None) -> None:
    """Block until every future is done, reporting progress; re-raise the first error."""
    total = len(futures)
    if progress:
        progress(label, 0, total)
    for done, future in enumerate(as_completed(futures), start=1):
        if future.status == "error":
            future.result()  # raises the task's exception here, with its traceback
        if progress:
            progress(label, done, total)
