"""Loading a python step's function (jobs/python_step.py): only from the spec's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs.errors import SpecError
from jobs.python_step import load_function

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
