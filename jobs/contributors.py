"""Who a python step's table counts: people (units), never records.

Researcher code can build any frame. With each person's row repeated ten times, a
count of records passes any threshold, so a python step's table never passes on a
count of records (issue 14). This module is the rule, used on both sides of a job's
sandboxes (`ctx.table` in the code's, tre/service/checking.py on the service's):

1. **No identifier as a key or a value.** A table keyed by an identifier column (one
   with `sensitivity: identifier` in its dataset's descriptor, such as resident_id)
   publishes one row per person whatever its counts say, and a statistic of
   identifiers is one person's identifier (min, max, median, mode) or means nothing.
   `ctx.table` refuses it before computing anything (`check_table`: KeyedByIdentifier),
   a declarative table step so keyed is refused at submission (jobs/catalog_checks.py,
   with these words: `identifier_uses`), and the TRE marks such a table "fail" when it
   checks the outputs (`refusal`), should one be handed over another way.
2. **Contributors are units.** In plan mode tre's engine counts each cell's distinct
   units by a column the plan can neither name nor change (jobs/plan_outputs.py). In
   free mode `ctx.table` counts distinct units (`unit_for`): by the `unit=` the code
   passed, which must be an identifier column; else by the identifier column in the
   frame, the dataset's declared unit first; with several and no `unit=`, UnitRefused.
3. **No identifier, no count of people.** A free-mode table whose frame carries no
   identifier column counts records, which code can repeat: tre cannot establish its
   contributors, and the TRE marks it for review saying so (`uncounted`). Free mode is
   advisory anyway (disclosure/advisory.py); the reason tells the checkers what its
   counts are. Requiring a unit instead would shut out every project approved without
   identifiers (data minimisation grants them only where needed), and plan mode counts
   such a table by the rows of the data, which code cannot repeat.

Names are compared, never values. Code that renames an identifier gets past (1), and
meets (2) or (3): in plan mode the engine's unit still counts one person in a cell
keyed by that person, which fails the threshold; in free mode the frame then carries
no identifier under its own name.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from jobs.errors import KeyedByIdentifier, UnitRefused
from jobs.outputs import TableOutput
from tre.models import Sensitivity

if TYPE_CHECKING:  # pyarrow: not for the service, which checks outputs with this module
    from tre.secured.reader import SecuredSource

#: The identifier columns of datasets: dataset -> its identifier columns.
Identifiers = Mapping[str, Collection[str]]

#: Why tre cannot establish a free-mode table's contributors (tre's words, for checkers).
UNCOUNTED = (
    "tre cannot establish its contributors: its frame carried no identifier column, so "
    "its counts are of records, which code can repeat"
)


def identifiers_of(sources: Mapping[str, SecuredSource]) -> dict[str, list[str]]:
    """The identifier columns of each source's dataset, as its descriptor declares them."""
    return {
        name: [c for c, _, sensitivity in source.columns if sensitivity == Sensitivity.IDENTIFIER]
        for name, source in sources.items()
    }


def check_table(where: str, keys: Sequence[str], value: str | None, found: Identifiers) -> None:
    """KeyedByIdentifier, naming every offending column, if an identifier column of
    `found` is among a table's `keys` or is its `value`. `where` says which table."""
    problems = _problems(keys, value, found)
    if not problems:
        return
    column, dataset, _ = problems[0]
    raise KeyedByIdentifier(
        f"{where} is refused: " + "; ".join(said for _, _, said in problems),
        dataset=dataset,
        column=column,
        fix="key the table by attributes or quasi-identifiers (an age band, a ward) and "
        f"pass the identifier as unit={column!r}, so that each person counts once",
    )


def refusal(output: TableOutput, found: Identifiers) -> str:
    """Why `output` may never be released because of its form (tre's words), or "": an
    identifier column among its keys or as its value (a count of the records with a value
    of one is no statistic of it). Only names of `found` are said."""
    value = output.value if output.statistic != "count" else None  # a count says no value
    return "; ".join(
        said for _, _, said in _problems([*output.rows, *output.columns], value, found)
    )


def unit_for(
    where: str,
    columns: Collection[str],
    asked: str | None,
    found: Identifiers,
    units: Mapping[str, str],
) -> str | None:
    """The column a free-mode table's contributors are counted by: `asked` (the code's
    `unit=`), which must be an identifier column of `found`; else the identifier column
    among the frame's `columns`, a dataset's declared unit (`units`: dataset -> unit)
    first; None when the frame has none. UnitRefused for an `asked` that is not an
    identifier, and for several identifier columns with none declared a unit."""
    owner = _owners(found)
    if asked is not None:
        if asked not in owner:
            raise UnitRefused(
                f"{where}: unit={asked!r} is not an identifier column of the datasets the "
                f"step reads ({_listed(owner)}); contributors are the people an "
                "identifier names",
                fix="pass one of those as unit=, under its own name in the frame, or leave "
                "unit out",
            )
        return asked
    present = sorted(c for c in owner if c in columns)
    declared = sorted({u for u in units.values() if u in present})
    if len(declared) == 1:
        return declared[0]
    if len(present) <= 1:
        return present[0] if present else None
    raise UnitRefused(
        f"{where}: its frame carries several identifier columns ({', '.join(present)}), "
        "and tre cannot tell which one each contributor is",
        fix=f"pass unit= naming the one the table counts (e.g. unit={present[0]!r}), or "
        "select only that one",
    )


def uncounted(output: TableOutput, found: Identifiers) -> str:
    """For a table whose evidence researcher code computed (free mode): UNCOUNTED when
    it was not counted by an identifier column of `found`, else ""."""
    return "" if output.unit and output.unit in _owners(found) else UNCOUNTED


def _problems(
    keys: Sequence[str], value: str | None, found: Identifiers
) -> list[tuple[str, str, str]]:
    """(column, dataset, tre's words) for each identifier column among `keys` or as
    `value`."""
    return identifier_uses(keys, value, _owners(found))


def identifier_uses(
    keys: Sequence[str], value: str | None, owner: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """(column, dataset, tre's words) for each identifier column among a table's `keys`
    or as its `value`; `owner` maps each identifier column to the dataset it is said to
    be of. The same words at submission (jobs/catalog_checks.py) and at checking."""
    problems = [
        (
            key,
            owner[key],
            f"{key} (an identifier column of {owner[key]}) is one of its keys, and a "
            "table keyed by an identifier publishes one row per person",
        )
        for key in dict.fromkeys(keys)
        if key in owner
    ]
    if value is not None and value in owner:
        problems.append(
            (
                value,
                owner[value],
                f"{value} (an identifier column of {owner[value]}) is its value, and a "
                "statistic of identifiers is one person's identifier or means nothing",
            )
        )
    return problems


def _owners(found: Identifiers) -> dict[str, str]:
    """Each identifier column -> the first dataset (by name) that has it."""
    owner: dict[str, str] = {}
    for dataset in sorted(found):
        for column in found[dataset]:
            owner.setdefault(column, dataset)
    return owner


def _listed(owner: Mapping[str, str]) -> str:
    if not owner:
        return "they declare none"
    return "identifier columns: " + ", ".join(f"{c} ({d})" for c, d in sorted(owner.items()))
