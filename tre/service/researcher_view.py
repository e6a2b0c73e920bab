"""What a researcher sees of a sandboxed job before any checker has looked at it.

Researcher code is hostile, and what it chooses must not reach the researcher before
review (issue 24; OpenSAFELY shows a fixed vocabulary of states the same way). A job
that ran a python step can still choose some of what a job reports, so the researcher
sees only what tre decided or counted, from a fixed vocabulary:

- **why it failed**: tre's own reasons; of an exception raised in their code, only its
  type when the type's *name* is on an allow-list (Python's builtin exceptions and the
  errors of the libraries a step uses: polars, numpy, dask, and tre's own), and a line
  number of their code
  (at most `MAX_LINE`), shown beside the file the spec names, never a name the code
  chose. The message is held for the checkers with the log. A column refusal also
  names the column when it is a real one of a dataset the job reads, or the declared
  column nearest to what the code asked for; a table refused for an identifier key, or
  for its unit, gets a fixed sentence (naming the column on the same terms).
- **progress**: per step of the spec, parts done out of the parts *tre* planned (the
  fragments it will read; one for a python step), whatever the job's progress file
  says: at most log2(parts + 1) bits per step and reading.
- **outputs**: of a python step, only the outputs its spec declares, under their
  declared names and descriptions, with their disclosure status; any other output it
  made is held for the checkers and counted ("2 undeclared outputs"), until release.
  A table whose evidence the code computed (free mode) carries one fixed sentence.

What still passes, and how much it can carry, is in docs/threat-model.md ("Channels
that remain").
"""

from __future__ import annotations

import builtins
import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from jobs.spec import JobSpec, PythonStep, RegressionStep, TableStep
from tre.models import JobState, OutputRequest

if TYPE_CHECKING:
    from tre.secured.reader import SecuredSource

MAX_LINE = 99_999
#: What a researcher is told of a table whose evidence their code computed (free mode):
#: one fixed sentence, whatever the reason was (tre's reason goes to the checkers).
ADVISORY_NOTE = (
    "computed by your code, so its checks are advisory and each checker approves it by "
    "name; a LazyFrame plan gives evidence tre's engine computes (docs/job-spec.md)"
)
#: What a researcher is told of a table refused for its keys (jobs/contributors.py):
#: tre's words, naming the column only when it is a real one of a dataset of the job.
KEYED_BY_IDENTIFIER = (
    " A table was keyed by {what}: a table keyed by an identifier publishes one row per "
    "person, so tre refuses it. Key it by attributes or quasi-identifiers (an age band, a "
    "ward) and pass {unit} as unit=, so that each person counts once."
)
UNIT_REFUSED = (
    " A table's unit= was not an identifier column of the step's datasets, or its frame "
    "carried several identifier columns and no unit= said which one a person is: pass "
    "unit= naming the identifier column of the people the table counts."
)
#: States in which no output has left: a researcher sees only what their spec declared.
BEFORE_RELEASE = frozenset({JobState.AWAITING_REVIEW, JobState.RETURNED, JobState.REJECTED})
#: Exception names a researcher may be shown: a fixed vocabulary, so a type the code
#: made up (`type("X<data>", (Exception,), {})`) carries nothing.
ALLOWED_TYPES = frozenset(
    {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    | {
        # polars (polars.exceptions)
        "ColumnNotFoundError",
        "ComputeError",
        "DuplicateError",
        "InvalidOperationError",
        "NoDataError",
        "OutOfBoundsError",
        "PanicException",
        "PolarsError",
        "SchemaError",
        "SchemaFieldNotFoundError",
        "ShapeError",
        "SQLInterfaceError",
        "SQLSyntaxError",
        "StructFieldNotFoundError",
        # numpy
        "LinAlgError",
        "AxisError",
        # dask and distributed (a worker lost, a task cancelled)
        "KilledWorker",
        "NoWorkerError",
        "CommClosedError",
        "FutureCancelledError",
        "CancelledError",
        # tre's own, raised by the engine or the secured reader inside the step
        "StepFailed",
        "ColumnRefused",
        "KeyedByIdentifier",
        "UnitRefused",
        "SpecError",
        "DisclosureInputError",
        "KeyNotGranted",
        "GrantError",
        "GrantInvalid",
        "GrantExpired",
        "GrantRevoked",
        "KeyServiceDown",
        "KeyServiceBusy",
        "PermissionDenied",
        "PlatformError",
        "CodeChanged",
    }
)
_WHERE = re.compile(r"^[^:]{1,200}:([0-9]{1,7})$")


def researcher_reason(
    spec: JobSpec,
    error: Mapping[str, Any],
    catalog: Mapping[str, Collection[str]] | None = None,
) -> str:
    """What the researcher may see of a failure in a job that ran their code: an allowed
    exception type and a line of their file, never the message or a name the code chose.
    A column refusal also says which column, when it is one of `catalog`'s (each
    dataset's real columns), and suggests declared ones: tre's words, from a vocabulary
    tre fixed."""
    if not any(isinstance(s, PythonStep) for s in spec.steps):
        return str(error.get("reason", "the job failed"))
    kind = str(error.get("type", ""))
    said = kind if kind in ALLOWED_TYPES else "an error"
    hint = _column_hint(spec, kind, error, catalog or {})
    at = ""
    found = _WHERE.fullmatch(str(error.get("where", "")))
    if found and 0 < int(found[1]) <= MAX_LINE:
        at = f" at line {int(found[1])} {_of_files(spec)}"
    return (
        f"the job failed: {said}{at}.{hint} Its message and the job's log are held for the "
        "output checkers, because code can put data in them; ask them to release the log "
        "if you need it"
    )


#: polars' errors for a column a frame does not have (a typo, or one not asked for).
_MISSING_COLUMN = frozenset({"ColumnNotFoundError", "SchemaFieldNotFoundError"})


def _column_hint(
    spec: JobSpec, kind: str, error: Mapping[str, Any], catalog: Mapping[str, Collection[str]]
) -> str:
    """A sentence about a refused or missing column, from names tre holds (the spec's
    declared columns, the catalog's): what the code chose picks among them, no more."""
    declared = {
        name: spec.datasets[name]
        for step in spec.steps
        if isinstance(step, PythonStep)
        for name in spec.step_datasets(step)
    }
    if kind in _MISSING_COLUMN:
        listed = "; ".join(f"{d}: {', '.join(cols)}" for d, cols in sorted(declared.items()))
        return (
            " A column your code named is not in the frame it used (a typo, or a column "
            f"not asked for).{_missing(spec, error, declared)} The columns the step may "
            f"read are {listed}."
        )
    if kind == "UnitRefused":
        return UNIT_REFUSED
    if kind not in ("ColumnRefused", "KeyedByIdentifier"):
        return ""
    dataset, column = str(error.get("dataset", "")), str(error.get("column", ""))
    if kind == "KeyedByIdentifier":
        named = column in catalog.get(dataset, ()) and column in declared.get(dataset, ())
        return KEYED_BY_IDENTIFIER.format(
            what=f"{column}, an identifier column of {dataset}" if named else "an identifier",
            unit=column if named else "the identifier",
        )
    if dataset not in declared:
        return ""
    if column in catalog.get(dataset, ()):
        return (
            f" It asked for column {column} of {dataset}, which the job spec does not "
            f"declare: add it under datasets.{dataset} (if the project is approved for it)."
        )
    close = difflib.get_close_matches(column, declared[dataset], n=1)
    guess = f" Did you mean {close[0]}?" if close else ""
    return f" It asked for a column {dataset} does not have.{guess}"


def _missing(
    spec: JobSpec, error: Mapping[str, Any], declared: Mapping[str, Collection[str]]
) -> str:
    """Which declared column a missing one is closest to, and the line of the submitted
    code that wrote it: a declared name and a bounded number, whatever the code chose."""
    column = str(error.get("column", ""))
    names = sorted({c for columns in declared.values() for c in columns})
    close = difflib.get_close_matches(column, names, n=1) if column else []
    said = f" Did you mean {close[0]}?" if close and close[0] != column else ""
    line = str(error.get("built_at", ""))
    if line.isdigit() and 0 < int(line) <= MAX_LINE:
        said += f" Your code names it at line {int(line)} {_of_files(spec)}."
    return said


def _of_files(spec: JobSpec) -> str:
    """'of summary.py' when the job's python steps come from one file, else 'of your code'."""
    files = sorted(
        {
            PurePath(s.function.partition(":")[0]).name
            for s in spec.steps
            if isinstance(s, PythonStep)
        }
    )
    return f"of {files[0]}" if len(files) == 1 else "of your code"


def planned_parts(
    spec: JobSpec, sources: Mapping[str, SecuredSource], target_rows: int
) -> dict[str, int]:
    """How many parts tre will report for each step: the fragments a table or regression
    step reads (as the engine splits them), one for a python step."""
    from tre.secured.reader import fragments  # pyarrow: only when a job is started

    parts: dict[str, int] = {}
    for step in spec.steps:
        if isinstance(step, TableStep | RegressionStep) and step.dataset in sources:
            parts[step.name] = max(1, len(fragments(sources[step.dataset], target_rows)))
        else:
            parts[step.name] = 1
    return parts


def bounded_progress(
    step_names: Sequence[str], planned: Mapping[str, Any], reported: Any
) -> dict[str, dict[str, int]]:
    """Per step of the spec (`step_names`), parts done out of tre's planned parts.
    `reported` (the job's progress file: untrusted) may only move `done` between 0 and
    the planned count."""
    steps = reported.get("steps") if isinstance(reported, dict) else None
    kept: dict[str, dict[str, int]] = {}
    for name in step_names:
        total = planned.get(name)
        if type(total) is not int or total < 1:
            total = 1
        seen = steps.get(name) if isinstance(steps, dict) else None
        if not isinstance(seen, dict):
            continue
        done = seen.get("done")
        done = done if type(done) is int else 0
        kept[name] = {"done": min(max(done, 0), total), "total": total}
    return kept


def declared_only(spec: JobSpec, request: OutputRequest) -> tuple[OutputRequest, int]:
    """`request` as its researcher may see it before release, and how many outputs were
    left out: a python step's outputs only under the names its spec declares, each
    summarised by its declared description (tre's summary of a table the code shaped
    would carry what the code chose); every other step's outputs as they are."""
    python = {s.name: s.outputs for s in spec.steps if isinstance(s, PythonStep)}
    shown, left = [], 0
    for output in request.outputs:
        declared = python.get(output.step)
        if declared is None:
            shown.append(output)
        elif output.name in declared:
            words = declared[output.name] or "declared in the job spec"
            shown.append(output.model_copy(update={"summary": words}))
        else:
            left += 1
    return request.model_copy(update={"outputs": shown}), left
