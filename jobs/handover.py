"""The one door between a job's two sandboxes: what its python steps hand the engine.

On the embedded default a job with python steps runs in two phases, one after the
other (slurm/sandbox.py, `in_sequence`):

1. the code phase: researcher code, as the OS user `tre-code`, in a sandbox of its own,
   runs the python steps and writes their outputs with `jobs.results.write_results`
   into its own folder (or `error.json` if it failed). Its processes all end with it.
2. the engine phase: tre's engine, as `tre-job`, runs the declarative steps and computes
   their evidence. It sees the code phase's folder read-only at /job/handover, and
   reads it here, and nowhere else.

Everything in that folder was written by researcher code, so it is read as untrusted:
copied by descriptor into the engine's private scratch (regular files only, within
limits: jobs/untrusted.py), every entry's name, kind and file checked before anything
is parsed, and each output must belong to a python step of the spec, with what its
entry claims of the types, ranges and sizes tre writes (jobs/claims.py: a count is a
whole number of at least 0). What the code claims as evidence is still only a claim:
the TRE labels such outputs advisory (disclosure/advisory.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.claims import check_claims
from jobs.errors import StepFailed
from jobs.outputs import Output, Planned
from jobs.results import ERROR, RESULT, read_results
from jobs.spec import JobSpec, PythonStep
from jobs.untrusted import MAX_SMALL_FILE, UntrustedOutput, copy_tree, is_dir, read_small
from tre.names import check_name

_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # as python_step's
_KINDS = {"table": "tables/{name}.parquet", "regression": "regressions/{name}.parquet"}
_PLANS = {"table": "tables/{name}.plan.json", "regression": "regressions/{name}.plan.json"}
MAX_REASON = 4000
NO_PLAN = (
    "the code handed over no plan: it was given a DataFrame, not a LazyFrame built from "
    "ctx.dataset, or a frame whose plan polars cannot write down"
)
MAX_DETAIL = 200


@dataclass
class Handover:
    """The code phase's outputs by python step, or its failure."""

    outputs: dict[str, list[Output]] = field(default_factory=dict)
    error: dict[str, Any] | None = None


class CodePhaseFailed(Exception):
    """The python steps failed in their own sandbox: the engine records their error as
    its own job's (its reason is held for the checkers like any from researcher code)."""

    def __init__(self, reason: str, detail: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def read_handover(folder: Path, spec: JobSpec, scratch: Path) -> Handover:
    """What the code phase left in `folder`, checked; StepFailed if it is not what a
    code phase may hand over (the job fails, saying so in tre's words)."""
    try:
        return _read(folder, spec, scratch)
    except UntrustedOutput as exc:
        raise StepFailed(
            f"the python steps handed over something tre refuses: {exc.message}"
        ) from None


def _read(folder: Path, spec: JobSpec, scratch: Path) -> Handover:
    raw = read_small(folder / ERROR)
    if raw is not None:
        return Handover(error=_error(raw))
    if not is_dir(folder / RESULT):
        raise StepFailed(
            "the python steps' sandbox ended without handing over a result or an error: "
            "it was stopped (its memory or time limit) or could not start"
        )
    copy = scratch / "handover"
    copy.mkdir(mode=0o700)
    copy_tree(folder / RESULT, copy / RESULT)
    document = _document(copy / RESULT / "result.json")
    python_steps = {s.name for s in spec.steps if isinstance(s, PythonStep)}
    for entry in document["outputs"]:
        _check_entry(entry, python_steps)
    try:
        outputs, _meta = read_results(copy)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UntrustedOutput(f"an output cannot be read ({type(exc).__name__})") from None
    handed: dict[str, list[Output]] = {}
    for output in outputs:
        if isinstance(output, Planned):  # never the code's own word on who computed it
            output.evidence = "code"
            output.plan_refused = "" if output.plan else NO_PLAN
        handed.setdefault(output.step, []).append(output)
    return Handover(outputs=handed)


def _document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # RecursionError: nested past Python's limit
        raise UntrustedOutput("its result.json is missing or not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("outputs"), list):
        raise UntrustedOutput("its result.json has no list of outputs")
    return document


def _check_entry(entry: object, python_steps: set[str]) -> None:
    """One output's entry: a python step's, a valid name, a known kind, and its data at
    exactly the place `write_results` puts it (never a path of the code's choosing)."""
    if not isinstance(entry, dict):
        raise UntrustedOutput("an output's entry is not a mapping")
    name, step, kind = entry.get("name"), entry.get("step"), entry.get("kind")
    if step not in python_steps:
        raise UntrustedOutput(f"an output claims a step that is not a python step ({step!r:.60})")
    try:
        check_name(str(name), "object", "output name")
    except ValueError:
        raise UntrustedOutput(f"an output's name is not allowed ({name!r:.60})") from None
    if kind == "file":
        filename = entry.get("filename")
        if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
            raise UntrustedOutput(f"file output {name} has a file name that is not allowed")
        expected = f"files/{name}/{filename}"
    elif kind in _KINDS:
        expected = _KINDS[kind].format(name=name)
    else:
        raise UntrustedOutput(f"output {name} is of an unknown kind ({kind!r:.30})")
    if entry.get("data") != expected:
        raise UntrustedOutput(f"output {name}'s data is not where an output's data goes")
    plan = entry.get("plan")
    if plan is not None and (kind not in _KINDS or plan != _PLANS[kind].format(name=name)):
        raise UntrustedOutput(f"output {name}'s plan is not where an output's plan goes")
    if not isinstance(entry.get("request", {}), dict):
        raise UntrustedOutput(f"output {name}'s model is not a mapping")
    files = entry.get("plan_files", {})
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(c, str) for c in v)
        for k, v in files.items()
    ):
        raise UntrustedOutput(f"output {name}'s plan files are not names and columns")
    check_claims(entry)


def _error(raw: bytes) -> dict[str, Any]:
    """The code phase's error.json, reduced to short strings (the researcher's view
    bounds them again: tre/service/researcher_view.py)."""
    try:
        document = json.loads(raw[:MAX_SMALL_FILE])
    except (ValueError, RecursionError):
        document = {}
    if not isinstance(document, dict):
        document = {}
    reason = document.get("reason")
    error: dict[str, Any] = {
        "reason": str(reason)[:MAX_REASON] if reason else "the python step failed"
    }
    for key in ("type", "where", "dataset", "column", "built_at"):
        value = document.get(key)
        if isinstance(value, str):
            error[key] = value[:MAX_DETAIL]
    if document.get("disk_full") is True:
        error["disk_full"] = True
    return error
