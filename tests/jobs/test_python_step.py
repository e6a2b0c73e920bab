"""A python step (jobs/python_step.py): its function is loaded only from the spec's
folder, and its tables count people, never records (jobs/contributors.py)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import polars as pl
import pytest

from jobs.errors import KeyedByIdentifier, SpecError, StepFailed
from jobs.python_step import StepContext, load_function
from tests.jobs import people

# Importing the module writes a marker beside it, so a test can tell it was never run.
MODULE = """
from pathlib import Path
Path(__file__).with_suffix(".imported").touch()

def main(ctx):
    pass
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The spec file's folder, with researcher code in it and more code outside it."""
    folder = tmp_path / "project"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "inside.py").write_text(MODULE)
    (tmp_path / "outside.py").write_text(MODULE)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "other.py").write_text(MODULE)
    os.symlink(tmp_path / "outside.py", folder / "link.py")
    os.symlink(tmp_path / "elsewhere", folder / "linked_dir")
    os.symlink(folder / "lib" / "inside.py", folder / "alias.py")
    return folder


@pytest.mark.parametrize(
    "reference", ["lib/inside.py:main", "./lib/inside.py:main", "alias.py:main"]
)
def test_a_file_inside_the_spec_folder_is_loaded(base, reference):
    assert callable(load_function(base, reference))
    assert (base / "lib" / "inside.imported").exists()


@pytest.mark.parametrize(
    "path_text",
    ["../outside.py", "lib/../../outside.py", "ABSOLUTE"],
    ids=["parent", "parent-inside", "absolute"],
)
def test_a_path_out_of_the_spec_folder_is_refused_and_never_imported(base, tmp_path, path_text):
    path_text = str(tmp_path / "outside.py") if path_text == "ABSOLUTE" else path_text
    with pytest.raises(SpecError) as info:
        load_function(base, f"{path_text}:main")
    message = info.value.render()
    assert f"the python step's file {path_text!r} is not inside the job spec's folder" in message
    assert "absolute paths and '..' are not allowed" in message
    assert "Fix (you): put the file in the job spec's folder" in message
    assert not (tmp_path / "outside.imported").exists()


@pytest.mark.parametrize("path_text", ["link.py", "linked_dir/other.py"])
def test_a_symlink_leading_out_of_the_spec_folder_is_refused(base, tmp_path, path_text):
    with pytest.raises(SpecError, match="outside the job spec's folder") as info:
        load_function(base, f"{path_text}:main")
    assert repr(path_text) in info.value.message
    assert not list(tmp_path.rglob("*.imported"))


def test_a_missing_file_says_where_it_looked(base):
    with pytest.raises(SpecError, match=r"'missing.py' does not exist \(looked in "):
        load_function(base, "missing.py:main")


# --- tables: contributors are people ----------------------------------------------------


def _context(granted: list[str] = people.COLUMNS) -> StepContext:
    """A step that may read residents (the demo catalog's descriptor), in free mode: its
    tables are given frames, as researcher code can build any frame."""
    return StepContext("mine", {"residents": people.source(granted)}, {"residents": granted})


def test_the_issues_example_each_persons_row_ten_times_keyed_by_resident_id_is_refused():
    ctx = _context()
    frame = pl.concat([people.people(40)] * 10)  # every cell "has" 10 records
    with pytest.raises(KeyedByIdentifier) as info:
        ctx.table("per_person", frame, rows=["resident_id", "age_band", "sex", "ltc_count"])
    message = info.value.render()
    assert message.startswith(
        "step 'mine', table 'per_person' is refused: resident_id (an identifier column of "
        "residents) is one of its keys, and a table keyed by an identifier publishes one "
        "row per person"
    )
    assert (
        "Fix (you): key the table by attributes or quasi-identifiers (an age band, a ward) "
        "and pass the identifier as unit='resident_id', so that each person counts once"
    ) in message
    assert (info.value.dataset, info.value.column) == ("residents", "resident_id")
    assert ctx.outputs == []  # nothing computed, nothing handed over
    # From a Dask worker it travels pickled, naming its column still (researcher_view).
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.dataset, again.column, again.render()) == ("residents", "resident_id", message)


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ({"rows": ["age_band"], "columns": ["resident_id"]}, "is one of its keys"),
        (
            {"rows": ["age_band"], "value": "resident_id", "statistic": "mode"},
            "is its value, and a statistic of identifiers is one person's identifier",
        ),
    ],
    ids=["column-key", "value"],
)
def test_an_identifier_anywhere_in_a_tables_definition_is_refused(where, said):
    with pytest.raises(KeyedByIdentifier, match=said):
        _context().table("t", people.people(40), **where)


def test_a_count_of_an_identifier_is_no_statistic_of_it_but_not_of_its_own_unit():
    # How many records name a resident says nothing of which, so it is not refused as a
    # statistic of identifiers; counted by that same identifier as unit, it is the unit
    # column as its own value, which the library refuses in its own words.
    with pytest.raises(StepFailed) as info:
        _context().table(
            "t", people.people(40), rows=["age_band"], value="resident_id", statistic="count"
        )
    assert "unit-id column 'resident_id' is also the value column" in info.value.render()
    assert "statistic of identifiers" not in info.value.render()
