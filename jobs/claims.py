"""What researcher code wrote into an output's entry of result.json, checked before
anything reads it: types, ranges and sizes, in tre's words.

A python step's outputs cross the one door to the engine (jobs/handover.py). Each
entry's place and name are checked there; this module checks what the entry claims: a
table's form (its keys, value, statistic, unit) and a regression's evidence (its sizes,
and the observations at each level or value of its predictors: the counts disclosure
control judges). Code could write anything there. A count written as a string, a
negative, NaN or infinity, a mapping nested where a number goes, or a tally of a million
levels would otherwise crash the check of the whole job, or pass: "5" would be read as
5 and `int(9.7)` as 9. Each is refused here (UntrustedOutput: the job fails, saying
what was wrong, as for any entry the door refuses).

The service checks every entry again before it checks the outputs
(`check_result_claims`, from tre/service/checking.py): where a job's python steps ran
beside its engine, not behind the door, their code could have written any entry.

What passes is still only a claim: the TRE labels free-mode evidence advisory
(disclosure/advisory.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from disclosure.validate import MAX_FEW_VALUES, STATISTICS
from jobs.results import RESULT
from jobs.untrusted import UntrustedOutput

MAX_NAME = 200  # a column, dataset or statistic's name
MAX_LEVEL = 1000  # a level of a categorical predictor, as text
MAX_TEXT = 4000  # a fit's text value
MAX_COLUMNS = 1000  # keys of a table, predictors of a model, datasets of an output
MAX_LEVELS = 10_000  # levels of one categorical predictor
MAX_FIT = 100  # entries of a regression's fit summary
MAX_COUNT = 2**62  # no count of observations is larger
MODELS = ("ols", "logistic")


def check_claims(entry: Mapping[str, Any]) -> None:
    """UntrustedOutput unless a table's or a regression's entry has the types, ranges and
    sizes tre writes (jobs/results.py). Files carry no claims."""
    name = str(entry.get("name"))[:60]
    kind = entry.get("kind")
    if not isinstance(entry.get("description", ""), str):  # the code's words, any length
        raise UntrustedOutput(f"output {name}'s description is not text")
    if kind == "table":
        _table(name, entry)
    elif kind == "regression":
        _regression(name, entry)


def check_result_claims(job_dir: Path) -> None:
    """`check_claims` on every output entry of the job's result.json; UntrustedOutput
    if one fails or the file is not a document of outputs."""
    try:
        document = json.loads((job_dir / RESULT / "result.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        raise UntrustedOutput("its result.json is missing or not JSON") from None
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list) or not all(isinstance(e, dict) for e in outputs):
        raise UntrustedOutput("its result.json has no list of outputs")
    for entry in outputs:
        check_claims(entry)


def _table(name: str, entry: Mapping[str, Any]) -> None:
    _names(name, "datasets", entry.get("datasets"))
    _names(name, "rows", entry.get("rows"))
    _names(name, "columns", entry.get("columns"))
    for key in ("value", "unit"):
        if entry.get(key) is not None:
            _text(name, key, entry.get(key), MAX_NAME)
    statistic = entry.get("statistic")
    if statistic not in STATISTICS:
        raise UntrustedOutput(
            f"table {name}'s statistic is not one tre computes (one of {', '.join(STATISTICS)})"
        )
    quantile = entry.get("quantile")
    if quantile is not None and not (_is_number(quantile) and 0 < quantile < 1):
        raise UntrustedOutput(f"table {name}'s quantile is not a number between 0 and 1")


def _regression(name: str, entry: Mapping[str, Any]) -> None:
    _names(name, "datasets", entry.get("datasets"))
    _text(name, "outcome", entry.get("outcome"), MAX_NAME)
    if entry.get("model") not in MODELS:
        raise UntrustedOutput(f"regression {name}'s model is not one of {', '.join(MODELS)}")
    for key in ("n_obs", "df_resid"):
        _count(name, key, entry.get(key))
    _tallies(name, "level_counts", entry.get("level_counts"), MAX_LEVELS)
    # Absent from results written before value counts were kept (jobs/results.py).
    _tallies(name, "value_counts", entry.get("value_counts", {}), MAX_FEW_VALUES)
    _fit(name, entry.get("fit"))


def _tallies(name: str, key: str, given: object, most: int) -> None:
    """`given` maps each predictor to {level: observations}: at most MAX_COLUMNS
    predictors and `most` levels each, every count a whole number of at least 0."""
    if not isinstance(given, dict):
        raise UntrustedOutput(f"regression {name}'s {key} is not a mapping of predictors")
    if len(given) > MAX_COLUMNS:
        raise UntrustedOutput(f"regression {name}'s {key} names over {MAX_COLUMNS:,} predictors")
    for predictor, tally in given.items():
        _text(name, f"{key} predictor", predictor, MAX_NAME)
        if not isinstance(tally, dict):
            raise UntrustedOutput(
                f"regression {name}'s {key} of a predictor is not a mapping of levels to counts"
            )
        if len(tally) > most:
            raise UntrustedOutput(
                f"regression {name}'s {key} of a predictor has over {most:,} levels, more "
                "than tre keeps"
            )
        for level, count in tally.items():
            _text(name, f"{key} level", level, MAX_LEVEL)
            _count(name, key, count)


def _count(name: str, key: str, count: object) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise UntrustedOutput(
            f"regression {name}'s {key} holds something other than a whole number of "
            "observations (at least 0)"
        )


def _fit(name: str, fit: object, nested: bool = True) -> None:
    """The fit summary (r_squared, deviance, iterations, outcome_counts...): a few
    scalars, or mappings of a few scalars."""
    if not isinstance(fit, dict) or len(fit) > MAX_FIT:
        raise UntrustedOutput(
            f"regression {name}'s fit is not a mapping of at most {MAX_FIT} entries"
        )
    for key, value in fit.items():
        _text(name, "fit", key, MAX_NAME)
        if value is None or isinstance(value, bool | int | float):
            continue
        if nested and isinstance(value, dict):
            _fit(name, value, nested=False)
            continue
        _text(name, "fit", value, MAX_TEXT)


def _names(name: str, key: str, given: object) -> None:
    if not isinstance(given, list) or len(given) > MAX_COLUMNS:
        raise UntrustedOutput(
            f"output {name}'s {key} is not a list of at most {MAX_COLUMNS:,} names"
        )
    for item in given:
        _text(name, key, item, MAX_NAME)


def _text(name: str, key: str, given: object, most: int) -> None:
    if not isinstance(given, str) or len(given) > most:
        raise UntrustedOutput(f"output {name}'s {key} is not text of at most {most:,} characters")


def _is_number(value: object) -> bool:
    """A finite int or float, never a bool (NaN fails every comparison, so 0 < q < 1
    refuses it too)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
