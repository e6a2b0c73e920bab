"""The `python` step: researcher code shipped with cloudpickle, run on a Dask worker.

The function receives a `StepContext`. It reads approved datasets as polars LazyFrames
and hands back outputs through the same output API as the other steps: tables and
regressions (with the evidence disclosure control needs) and files (always reviewed by
a person). The function's pickled bytes are hashed into the job record at submission and
checked before they are unpickled (jobs/code.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import pickle
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePath
from types import FrameType
from typing import Any

import cloudpickle
import polars as pl
from pydantic import ValidationError

from disclosure import aggregate
from disclosure.errors import DisclosureInputError
from jobs import contributors, plans
from jobs.errors import ColumnRefused, SpecError, StepFailed
from jobs.frames import read_frame
from jobs.outputs import FileOutput, Output, RegressionOutput, TableOutput
from jobs.regression_step import fit_in_memory
from jobs.spec import RegressionStep
from jobs.table_step import table_grid
from tre.names import check_name
from tre.secured.reader import SecuredSource

MAX_FILE_BYTES = 10 * 1024**2  # files go to a person: keep them reviewable
MAX_FILES = 20
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class StepContext:
    """What researcher code sees: approved datasets in, outputs out."""

    def __init__(
        self,
        step: str,
        sources: dict[str, SecuredSource],
        declared: dict[str, list[str]],
        top_k: int = 2,
        files: Path | None = None,
    ) -> None:
        self.step = step
        self._sources = sources
        self._declared = declared
        self._top_k = top_k
        #: Where `dataset` keeps what it read, so a LazyFrame built on it has a plan the
        #: engine can run again (plan mode: jobs/plans.py); None: in memory, no plans.
        self._files = files
        self._asked: dict[str, list[str]] = {}
        #: Who the data is about, from the datasets' descriptors (jobs/contributors.py).
        self._identifiers = contributors.identifiers_of(sources)
        self._units = {name: s.unit for name, s in sources.items() if s.unit}
        self.outputs: list[Output] = []

    @property
    def datasets(self) -> list[str]:
        """Names of the datasets this step may read."""
        return sorted(self._sources)

    def dataset(self, name: str, columns: Sequence[str] | None = None) -> pl.LazyFrame:
        """An approved dataset (its declared columns, or fewer) as a polars LazyFrame."""
        if name not in self._sources:
            raise StepFailed(
                f"step {self.step!r} asked for dataset {name!r}; it may read: "
                f"{', '.join(self.datasets)}",
                fix="list the dataset under the job's datasets (and the step's datasets)",
            )
        wanted = list(columns) if columns is not None else self._declared[name]
        undeclared = sorted(set(wanted) - set(self._declared[name]))
        if undeclared:
            raise ColumnRefused(
                f"step {self.step!r} asked for column(s) {', '.join(undeclared)} of {name!r}, "
                "which the job spec does not declare",
                dataset=name,
                column=undeclared[0],
                fix=f"add them under datasets.{name} in the job spec (if the project is approved "
                "for them)",
            )
        if self._files is None:
            return read_frame(self._sources[name], wanted).lazy()
        columns = sorted(set(wanted))
        path = plans.scan_file(self._files, name, columns)
        if path.name not in self._asked:
            read_frame(self._sources[name], columns).write_ipc(path)
            self._asked[path.name] = columns
        return pl.scan_ipc(path)

    def table(
        self,
        name: str,
        data: pl.DataFrame | pl.LazyFrame,
        rows: Sequence[str],
        columns: Sequence[str] = (),
        value: str | None = None,
        statistic: str = "count",
        quantile: float | None = None,
        description: str = "",
        unit: str | None = None,
    ) -> None:
        """Add a frequency or magnitude table, checked like a `table` step's. Its
        contributors are people: counted by `unit` (an identifier column of the data),
        else by the identifier column the frame carries (jobs/contributors.py); a table
        keyed by an identifier is refused."""
        self._check_name(name)
        keys = [*rows, *columns]
        where = f"step {self.step!r}, table {name!r}"
        # Counting the records that have an identifier says nothing of which: allowed.
        summarised = value if statistic != "count" else None
        contributors.check_table(where, keys, summarised, self._identifiers)
        plan, refused = self._plan_of(data)  # before computing, which caches its schema
        present = data.collect_schema().names() if isinstance(data, pl.LazyFrame) else data.columns
        unit = contributors.unit_for(where, present, unit, self._identifiers, self._units)
        try:
            partial = aggregate.partial(data, keys, value, statistic, top_k=self._top_k, unit=unit)
            cells = aggregate.with_margins(
                partial,
                keys,
                statistic,
                quantile,
                grid=table_grid(list(rows), list(columns)),
                unit=unit,
                top_k=self._top_k,
            )
        except DisclosureInputError as exc:
            raise StepFailed(f"step {self.step!r}, table {name!r}: {exc}") from exc
        self.outputs.append(
            TableOutput(
                evidence="code",
                plan=plan,
                plan_files={f: self._asked[f] for f in self._asked} if plan else {},
                plan_refused=refused,
                name=name,
                step=self.step,
                description=description,
                datasets=self.datasets,
                rows=list(rows),
                columns=list(columns),
                value=value,
                statistic=statistic,
                quantile=quantile,
                cells=cells,
                unit=unit,
            )
        )

    def _plan_of(
        self, data: pl.DataFrame | pl.LazyFrame, *, concatenation: bool = True
    ) -> tuple[str | None, str]:
        """The plan handed to the engine for this output, and why plan mode refuses it
        if it does (said in this phase's log). A plan is handed over even if refused:
        the engine checks it again and says why in its own words (the code's words
        never reach the report); it then stays the code's (free mode, advisory)."""
        if self._files is None:
            return None, "plan mode is not available where this step ran"
        if not isinstance(data, pl.LazyFrame):
            return None, "it was given an in-memory DataFrame, not a LazyFrame"
        try:
            plan = plans.to_json(data)
        except Exception as exc:  # polars cannot serialise it (an opaque Python object)
            return None, f"its plan cannot be serialised ({type(exc).__name__})"
        if len(plan) > plans.MAX_PLAN_BYTES:
            return None, f"its plan is over {plans.MAX_PLAN_BYTES >> 20} MiB"
        try:
            plans.check(plan, self._declared, self._asked, concatenation=concatenation)
        except plans.PlanRefused as exc:
            return plan, str(exc)
        return plan, ""

    def regression(
        self,
        name: str,
        data: pl.DataFrame | pl.LazyFrame,
        outcome: str,
        predictors: Sequence[str],
        categorical: Sequence[str] = (),
        model: str = "ols",
        intercept: bool = True,
        description: str = "",
    ) -> None:
        """Add an OLS or logistic regression, checked like a `regression` step's."""
        self._check_name(name)
        try:
            spec = RegressionStep(
                kind="regression",
                name=name,
                dataset=self.datasets[0],
                model=model,
                outcome=outcome,
                predictors=list(predictors),
                categorical=list(categorical),
                intercept=intercept,
                description=description,
            )
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors())
            raise StepFailed(f"step {self.step!r}, regression {name!r}: {problems}") from None
        plan, refused = self._plan_of(data, concatenation=False)
        frame = data.collect() if isinstance(data, pl.LazyFrame) else data
        result: RegressionOutput = fit_in_memory(spec, frame)
        result.step, result.datasets = self.step, self.datasets
        result.evidence, result.plan, result.plan_refused = "code", plan, refused
        result.plan_files = {f: self._asked[f] for f in self._asked} if plan else {}
        result.request = {
            "predictors": list(predictors),
            "categorical": list(categorical),
            "intercept": intercept,
        }
        self.outputs.append(result)

    def file(self, name: str, filename: str, content: bytes | str, description: str = "") -> None:
        """Add a free-form file. A person reviews every file before it can leave."""
        self._check_name(name)
        if not _FILENAME.fullmatch(filename):
            raise StepFailed(
                f"file name {filename!r} is not allowed: use letters, digits, '.', '_' or '-' "
                "(no folders), at most 100 characters"
            )
        data = content.encode() if isinstance(content, str) else bytes(content)
        if len(data) > MAX_FILE_BYTES:
            raise StepFailed(
                f"file {filename!r} is {len(data)} bytes; the most a checker can review is "
                f"{MAX_FILE_BYTES} bytes",
                fix="write a summary, not row-level data",
            )
        if sum(isinstance(o, FileOutput) for o in self.outputs) >= MAX_FILES:
            raise StepFailed(f"a step may produce at most {MAX_FILES} files")
        self.outputs.append(
            FileOutput(
                name=name, step=self.step, description=description, filename=filename, content=data
            )
        )

    def _check_name(self, name: str) -> None:
        try:
            check_name(name, "object", "output name")
        except ValueError as exc:
            raise StepFailed(str(exc)) from None
        if any(o.name == name for o in self.outputs):
            raise StepFailed(f"step {self.step!r} already has an output called {name!r}")


def run_python_step(
    pickled: bytes,
    step: str,
    sources: dict[str, SecuredSource],
    declared: dict[str, list[str]],
    top_k: int,
) -> list[Output]:
    """Runs on a worker: unpickle the function, call it, return its outputs. What it
    reads is kept in a private folder while it runs, so its tables have plans."""
    function = cloudpickle.loads(pickled)
    with tempfile.TemporaryDirectory(prefix="tre-datasets-") as folder:
        context = StepContext(step, sources, declared, top_k, files=Path(folder))
        result = function(context)  # every output is computed before the files go
    if result is not None:
        raise StepFailed(
            f"step {step!r}: the function returned a value; outputs must go through the context",
            fix="call ctx.table(...), ctx.regression(...) or ctx.file(...) instead of returning",
        )
    if not context.outputs:
        raise StepFailed(
            f"step {step!r} produced no outputs",
            fix="add at least one ctx.table, ctx.regression or ctx.file call",
        )
    return context.outputs


def pickle_function(function: Callable[..., Any]) -> bytes:
    """Pickle `function` by value so workers need not have its module installed;
    SpecError naming what cannot be pickled (a lock, an open file, a connection)."""
    module = sys.modules.get(function.__module__)
    by_value = module is not None and function.__module__ not in ("__main__", "builtins")
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return bytes(cloudpickle.dumps(function))
    except (TypeError, AttributeError, pickle.PicklingError, RecursionError) as exc:
        name = getattr(function, "__qualname__", repr(function))
        raise SpecError(
            f"the function {name!r} cannot be sent to the job: {type(exc).__name__}: "
            f"{str(exc)[:200]}",
            reasons=[
                "a job's code travels to the TRE pickled, with every global it uses; an "
                "object such as a lock, an open file, a database connection or a thread "
                "cannot be pickled"
            ],
            fix="make such objects inside the function (or pass plain data), not at the "
            "top of the module",
        ) from None
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def load_function(base: Path, reference: str) -> Callable[..., Any]:
    """Import `path.py:function` from the researcher's file, which must be inside `base`
    (the spec file's folder): the spec names its code, never anything else on the machine."""
    path_text, _, name = reference.partition(":")
    path = _inside(base, path_text)
    if not path.is_file():
        raise SpecError(
            f"the python step's file {path_text!r} does not exist (looked in {base})",
            fix="give the path relative to the job spec file, e.g. 'analysis.py:main'",
        )
    module_name = "tre_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path_text} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    with _real_interrupts() as interrupted:
        try:
            spec.loader.exec_module(module)
        except (SystemExit, KeyboardInterrupt) as exc:
            sys.modules.pop(module_name, None)
            if isinstance(exc, KeyboardInterrupt) and interrupted():
                raise  # a real Ctrl-C still aborts
            said = (
                f"SystemExit({exc.code!r})" if isinstance(exc, SystemExit) else "KeyboardInterrupt"
            )
            raise SpecError(
                f"importing {path_text} stopped: the module raised {said} when it was "
                "imported, so there is no function to submit",
                fix="keep code that exits or runs the analysis under "
                "'if __name__ == \"__main__\":', so that importing the file only defines "
                "its functions",
            ) from None
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise SpecError(
                f"importing {path_text} failed: {type(exc).__name__}: {exc}",
                fix="run the file with python to see the error",
            ) from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise SpecError(f"{path_text} has no function {name!r}")
    return function


def _inside(base: Path, path_text: str) -> Path:
    """`path_text` resolved under `base`; SpecError if it is absolute, climbs with '..' or
    resolves (through symlinks) to somewhere outside `base`."""
    fix = (
        "put the file in the job spec's folder (or a folder inside it) and name it relative "
        "to the spec, e.g. 'analysis.py:main'"
    )
    relative = PurePath(path_text)
    root = base.resolve()
    if relative.is_absolute() or ".." in relative.parts:
        raise SpecError(
            f"the python step's file {path_text!r} is not inside the job spec's folder {root}: "
            "absolute paths and '..' are not allowed",
            fix=fix,
        )
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise SpecError(
            f"the python step's file {path_text!r} resolves to {path}, outside the job spec's "
            f"folder {root} (through a symbolic link)",
            fix=fix,
        )
    return path


@contextlib.contextmanager
def _real_interrupts() -> Iterator[Callable[[], bool]]:
    """While importing a researcher's module: tells a real Ctrl-C (SIGINT) from a
    KeyboardInterrupt the module raised itself. Off the main thread no signal arrives,
    so every KeyboardInterrupt there is the module's."""
    seen = {"sigint": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        seen["sigint"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: seen["sigint"]
    finally:
        signal.signal(signal.SIGINT, previous)
