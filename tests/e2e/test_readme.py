"""The README's notebook example, run as written in a home like the demo's (issue 27:
it used to fail there, naming no way to say who you are)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.conftest import stop_key_service

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def _notebook_example() -> str:
    text = README.read_text()
    after = text.split("The same can be done from a notebook:", 1)[1]
    found = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert found, "the README's notebook example is missing"
    return found.group(1)


def test_the_readme_notebook_example_runs_as_written(home: Path, monkeypatch):
    monkeypatch.setenv("TRE_HOME", str(home))
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            # Our own README, as a reader would paste it into a notebook.
            exec(compile(_notebook_example(), "README.md", "exec"), {"__name__": "__main__"})
    finally:
        stop_key_service(home)
    assert printed.getvalue().split()[0] == "awaiting_review", printed.getvalue()
