"""Differencing beyond pairs: three or more tables that together count a small group no
table publishes.

Everyone, those with at most 3 conditions, and those with 8 or more: no two of these
tables differ by a small number, yet the first less the other two is the people with
4 to 7 conditions (and those with no count), per cell. The pair checks
(`disclosure.differencing`) cannot see it; this solves over the set.

Tables of one group (the same datasets, versions and link, counting records, none
rounded) whose filters `disclosure.populations` can read are cut along every boundary
their filters draw: per filtered column, the values between and at the boundaries and
the missing value; an **atom** is one piece of each column. Every population is a union
of atoms, so on each cell of the keys the tables share, each table's count is the sum of
its atoms' counts: a linear system, the same for every cell. A group is revealed when
its vector of atoms lies in the row space of the tables that publish that cell
(`numpy.linalg.lstsq`, exact to rounding), and its count, the same combination of the
published counts, is between 1 and threshold - 1.

Which groups are tried: every atom, and every table's remainder (its rows in none of
the tables inside it). A union of atoms that is neither is not tried: such a group is
still found when each of its atoms is (the common case), but not always; and a system
of more than `MAX_ATOMS` atoms is not solved. docs/disclosure.md says so. Combinations
of two tables are left to the pair checks, which say more about them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from disclosure.populations import Interval, ValueSet, population_sets, set_text
from disclosure.published import PublishedTable

__all__ = ["MAX_ATOMS", "Combination", "find_combinations"]

#: The most atoms one system may have (the product of the pieces of every filtered
#: column). Past it the tables are left to the pair checks.
MAX_ATOMS = 4096
_TOLERANCE = 1e-7
_ATOMS_SAID = 4  # a group of more atoms is named by its tables alone

#: A table's counts over some keys, by key values (None: unknown, a suppressed cell).
CountsOf = Callable[[PublishedTable, list[str]], Mapping[tuple[str | None, ...], float | None]]


@dataclass(frozen=True)
class Combination:
    """Tables whose published counts together give a small group's count."""

    tables: tuple[PublishedTable, ...]
    group: str  # the group, in words
    keys: tuple[str, ...]
    cells: tuple[tuple[str | None, ...], ...]  # the key values where it is small


def find_combinations(tables: Sequence[PublishedTable], counts: CountsOf) -> list[Combination]:
    """Every small group that three or more of `tables` reveal together, and none of its
    pairs, where at least one table is new (job None)."""
    usable = [t for t in tables if _usable(t)]
    found: list[Combination] = []
    for same in _by_data(usable).values():
        if len(same) >= 3 and any(t.job_id is None for t in same):
            found += _solve(same, counts)
    return found


def _usable(table: PublishedTable) -> bool:
    population = table.population or {}
    return (
        not table.rounded_to
        and not table.perturbed
        and table.measure.startswith("records")
        and population.get("filters") is not None
    )


def _by_data(tables: list[PublishedTable]) -> dict[str, list[PublishedTable]]:
    groups: dict[str, list[PublishedTable]] = {}
    for table in tables:
        population = table.population or {}
        key = json.dumps(
            [table.measure, population.get("datasets"), population.get("link")],
            sort_keys=True,
            default=str,
        )
        groups.setdefault(key, []).append(table)
    return groups


def _solve(tables: list[PublishedTable], counts: CountsOf) -> list[Combination]:
    types: dict[str, str] = {}
    for table in tables:
        types.update(dict((table.population or {}).get("types") or {}))
    sets = [population_sets((t.population or {}).get("filters") or [], types) for t in tables]
    if any(s is None for s in sets):
        return []
    readable = [s for s in sets if s is not None]
    atoms = _atoms(readable, types)
    if atoms is None:
        return []
    incidence = np.array(
        [[_inside(atom, s, types) for atom in atoms] for s in readable], dtype=float
    )
    candidates = _candidates(incidence)
    if not candidates:
        return []
    target = np.array([vector for vector, _ in candidates]).T  # atoms x candidates
    threshold = max(t.threshold for t in tables)
    found: dict[tuple[int, ...], list[Any]] = {}
    for keys in _key_sets(tables):
        sharing = [i for i, t in enumerate(tables) if set(keys) <= set(t.keys)]
        if len(sharing) < 3:
            continue
        per_table = {i: counts(tables[i], list(keys)) for i in sharing}
        cells = sorted({v for c in per_table.values() for v in c}, key=_order)
        solved: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        for values in cells:
            known = _distinct(
                [i for i in sharing if per_table[i].get(values) is not None], incidence
            )
            if len(known) < 3:
                continue
            if known not in solved:
                solved[known] = _combinations(incidence[list(known)], target)
            weights, determined = solved[known]
            published = np.array([per_table[i][values] for i in known], dtype=float)
            value = published @ weights  # one count per candidate
            small = determined & (value > 0.5) & (value < threshold - 0.5)
            for c in np.nonzero(small)[0]:
                used = tuple(known[j] for j in np.nonzero(np.abs(weights[:, c]) > _TOLERANCE)[0])
                if len(used) < 3 or all(tables[i].job_id is not None for i in used):
                    continue
                entry = found.setdefault((*used, -1, int(c)), [keys, []])
                if entry[0] == keys:
                    entry[1].append(values)
    return [
        Combination(
            tables=tuple(tables[i] for i in key[: key.index(-1)]),
            group=candidates[key[-1]][1](atoms, tables, types),
            keys=tuple(keys),
            cells=tuple(cells),
        )
        for key, (keys, cells) in found.items()
    ]


def _distinct(indices: list[int], incidence: np.ndarray) -> tuple[int, ...]:
    """The first of each set of tables over the same population (two tables of one
    population are one equation: a pair check's business, never a combination)."""
    seen: set[tuple[float, ...]] = set()
    kept = []
    for i in indices:
        row = tuple(incidence[i])
        if row not in seen:
            seen.add(row)
            kept.append(i)
    return tuple(kept)


def _combinations(rows: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target column: the weights of `rows` that make it (least squares), and
    whether they make it exactly."""
    weights, *_ = np.linalg.lstsq(rows.T, target, rcond=None)
    residual = np.abs(rows.T @ weights - target).max(axis=0)
    return weights, residual < _TOLERANCE


# --- atoms: the pieces every boundary cuts ------------------------------------------------

Atom = tuple[tuple[str, ValueSet], ...]  # (column, piece) for each filtered column


def _atoms(sets: list[dict[str, ValueSet]], types: Mapping[str, str]) -> list[Atom] | None:
    columns = sorted({c for s in sets for c in s})
    pieces = []
    for column in columns:
        found = _pieces([s[column] for s in sets if column in s], types.get(column) == "integer")
        if found is None:
            return None
        pieces.append([(column, p) for p in found])
    if int(np.prod([len(p) for p in pieces])) > MAX_ATOMS:
        return None
    return [tuple(a) for a in itertools.product(*pieces)]


def _pieces(sets: list[ValueSet], integer: bool) -> list[ValueSet] | None:
    """The values of one column cut at every end of every interval of `sets`: the open
    stretches between the ends, each end alone, and the missing value."""
    ends = {end for s in sets for i in s.intervals for end in (i.low, i.high)}
    ends -= {-np.inf, np.inf}
    kinds = {isinstance(e, str) for e in ends}
    if len(kinds) > 1:
        return None
    points = sorted(ends)
    low, high = -np.inf, np.inf
    stretches = [Interval(a, False, b, False) for a, b in itertools.pairwise([low, *points, high])]
    parts = [ValueSet((i,), False) for i in stretches]
    parts += [ValueSet((Interval(p, True, p, True),), False) for p in points]
    parts.append(ValueSet((), True))
    everything = ValueSet.everything()
    return [p for p in parts if not p.meet(everything, integer).is_empty()]


def _inside(atom: Atom, population: dict[str, ValueSet], types: Mapping[str, str]) -> bool:
    return all(
        piece.within(population[column], types.get(column) == "integer")
        for column, piece in atom
        if column in population
    )


# --- the groups tried ---------------------------------------------------------------------

Describe = Callable[[list[Atom], list[PublishedTable], Mapping[str, str]], str]


def _candidates(incidence: np.ndarray) -> list[tuple[np.ndarray, Describe]]:
    """(atoms vector, how to say it) for each group tried: every atom any table counts,
    and each table's remainder; never a group a table publishes itself."""
    tables, size = incidence.shape
    seen = {tuple(row) for row in incidence}
    found: list[tuple[np.ndarray, Describe]] = []
    for a in range(size):
        if incidence[:, a].any():
            vector = np.zeros(size)
            vector[a] = 1.0
            if tuple(vector) not in seen:
                seen.add(tuple(vector))
                found.append((vector, _atom_words(a)))
    for i in range(tables):
        inside = [
            j
            for j in range(tables)
            if j != i
            and (incidence[j] <= incidence[i]).all()
            and (incidence[j] < incidence[i]).any()
        ]
        if not inside:
            continue
        rest = incidence[i] * (1 - incidence[inside].max(axis=0))
        if rest.any() and tuple(rest) not in seen:
            seen.add(tuple(rest))
            found.append((rest, _remainder_words(i, inside, np.nonzero(rest)[0].tolist())))
    return found


def _atom_words(index: int) -> Describe:
    def words(atoms: list[Atom], _tables: list[PublishedTable], types: Mapping[str, str]) -> str:
        said = [
            set_text(column, piece.meet(ValueSet.everything(), types.get(column) == "integer"))
            for column, piece in atoms[index]
        ]
        return " and ".join(said) or "every row"

    return words


def _remainder_words(table: int, inside: list[int], atoms_in: list[int]) -> Describe:
    def words(atoms: list[Atom], tables: list[PublishedTable], types: Mapping[str, str]) -> str:
        others = ", ".join(tables[j].name for j in inside)
        said = f"the rows of {tables[table].name} in none of {others}"
        if len(atoms_in) <= _ATOMS_SAID:
            said += ": " + "; or ".join(_atom_words(a)(atoms, tables, types) for a in atoms_in)
        return said

    return words


def _key_sets(tables: list[PublishedTable]) -> list[tuple[str, ...]]:
    """The keys to compare on: each table's own, the keys all share, and none (totals)."""
    found = {tuple(sorted(t.keys)) for t in tables}
    shared = set(tables[0].keys).intersection(*(t.keys for t in tables[1:]))
    found |= {tuple(sorted(shared)), ()}
    return sorted(found, key=lambda k: (-len(k), k))


def _order(values: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, v or "") for v in values)
