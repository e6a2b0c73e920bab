"""Property tests of the three files a person gives tre, read as tre reads them.

- a job spec: `load_spec` and `load_pickles` (as `tre submit` does: its python steps'
  functions are imported and pickled), then `submit_job` as rita;
- a project request: `projects.read_request` (as `tre project request` does), then
  `request_project` as rita;
- a dataset descriptor: `read_descriptor` (as `tre dataset ingest --descriptor` does).

Whatever the file holds, it is accepted, or refused with a `TreError` that a person can
act on: exit code 2, 3 or 4 and a message. Never another exception (the CLI's exit 70,
"internal error"). The inputs are near-valid documents (the examples in jobs/examples
and tre/demo/datasets with a few random changes), arbitrary YAML-like text, and
arbitrary bytes. Each property has a fixed budget (`EXAMPLES`), so the file runs in
well under a minute.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jobs.spec import load_spec
from tests.conftest import EXAMPLES as EXAMPLE_FOLDER
from tests.conftest import ROOT, stop_key_service
from tre import yamlfile
from tre.cli.jobs import load_pickles
from tre.errors import TreError
from tre.secured.ingest import read_descriptor
from tre.service import jobs, projects
from tre.service.session import Session

pytestmark = pytest.mark.slow

#: Generated inputs per property (about 6 s each on 2 cores).
EXAMPLES = 500
SPECS = [
    *(p for p in sorted(EXAMPLE_FOLDER.glob("*.yaml")) if not p.name.startswith("project")),
    EXAMPLE_FOLDER / "early_help" / "summary.yaml",
]
DESCRIPTORS = sorted((ROOT / "tre" / "demo" / "datasets").glob("*.yaml"))


def example(path: Path) -> Any:
    return yamlfile.load(path.read_bytes(), str(path))


def strings(doc: Any) -> Iterator[str]:
    """Every key and text value in a document."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield key
            yield from strings(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from strings(value)


# -- what is generated -------------------------------------------------------------------

#: Words the files use, so a random key or value often means something to tre.
WORDS = sorted(
    {
        *(word for path in [*SPECS, *DESCRIPTORS] for word in strings(example(path))),
        *("2GiB", "1GiB", "512MiB", "2G", "10m", "00:10:00", "0", "-1", "2027-02-30"),
        *("2027-12-31", "1970-01-01", "count", "sum", "mean", "median", "quantile", "max"),
        *("identifier", "attribute", "string", "int64", "list<string>", "dictionary"),
        *("table", "regression", "python", "==", "in", "not null", "has_copd == true"),
    }
)
words = st.sampled_from(WORDS)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80),
    st.floats(),
    text,
    words,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words | text, inner, max_size=4),
    max_leaves=12,
)


def _places(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a document: the root, each mapping key and each list item."""
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _places(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _places(value, (*path, index))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def like(value: Any) -> st.SearchStrategy[Any]:
    """A value of the same kind as `value` (often one tre accepts there), or anything."""
    if isinstance(value, bool):
        same: st.SearchStrategy[Any] = st.booleans()
    elif isinstance(value, int):
        same = st.integers(-3, 300) | st.integers()
    elif isinstance(value, str):
        same = words | text
    elif isinstance(value, list):
        same = st.lists(words, max_size=4)
    else:
        same = values
    return same | values


@st.composite
def near(draw: st.DrawFn, doc: Any, fresh_name: bool = False) -> Any:
    """`doc` with up to three random changes: a value replaced, a key or item removed,
    an unknown key added, a list item repeated, a container emptied or wrapped.
    `fresh_name`: a new name, so a request is not refused only as one already made."""
    doc = yaml.safe_load(yaml.safe_dump(doc))  # a deep copy
    if fresh_name:
        doc["name"] = draw(st.from_regex(r"[a-z][a-z0-9-]{2,30}", fullmatch=True))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_places(doc))))
        if not path:
            doc = draw(values) if draw(st.integers(0, 9)) == 0 else doc
            continue
        parent, last = _at(doc, path[:-1]), path[-1]
        change = draw(st.sampled_from(["replace", "remove", "add", "repeat", "empty", "wrap"]))
        if change == "replace":
            parent[last] = draw(like(parent[last]))
        elif change == "remove":
            del parent[last]
        elif change == "add" and isinstance(parent, dict):
            parent[draw(words | text)] = draw(values)
        elif change == "repeat" and isinstance(parent, list):
            parent.insert(last, parent[last])
        elif change == "empty":
            parent[last] = type(parent[last])() if isinstance(parent[last], list | dict) else ""
        elif change == "wrap":
            parent[last] = [parent[last]]
    return doc


def as_yaml(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()


#: Pieces of YAML, including what the strict loader must refuse cleanly: tags, anchors
#: and aliases, merge keys, directives, several documents, tabs, a BOM, a NUL.
PIECES = [
    *("\n", "\n  ", "\n    ", "  ", ": ", "- ", "-", "? ", "{", "}", "[", "]", ", ", "'", '"'),
    *("&a ", "*a", "<<: *a\n", "!!binary ", "!!python/object/apply:os.system ", "!!set "),
    *("!!int ", "!!float ", "!!timestamp ", "!!str ", "!local ", "---\n", "...\n"),
    *("%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "#", "|\n", ">-\n", "\t", "\ufeff", "\x00"),
    *("~", "null", "yes", "on", "0x1F", "0o17", "010", "1e999", ".nan", "-.inf", "1_000"),
    *(f"{word}: " for word in WORDS),
    *WORDS,
]
yaml_text = st.lists(st.sampled_from(PIECES) | text, max_size=40).map("".join)


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` cut short, or with bytes changed or put in."""
    start = draw(st.integers(0, len(data)))
    end = draw(st.integers(start, min(len(data), start + 8)))
    return data[:start] + draw(st.binary(max_size=8)) + data[end:]


def files(examples: list[Path], fresh_name: bool = False) -> st.SearchStrategy[bytes]:
    """Near-valid documents, YAML-like text, damaged example files and arbitrary bytes."""
    documents = st.sampled_from(examples).map(example)
    return st.one_of(  # half near-valid documents, half the rest
        documents.flatmap(lambda doc: near(doc, fresh_name)).map(as_yaml),
        st.one_of(
            st.sampled_from(examples).flatmap(lambda path: damaged(path.read_bytes())),
            yaml_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
            st.binary(max_size=200),
        ),
    )


# -- how tre reads them ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rita(tmp_path_factory: pytest.TempPathFactory, template_home: Path) -> Iterator[Session]:
    """A session as rita on a home of this module's own (what is accepted is kept)."""
    home = tmp_path_factory.mktemp("properties") / "home"
    shutil.copytree(template_home, home, ignore=shutil.ignore_patterns("pid", "lock"))
    session = Session.open(home, "rita")
    yield session
    session.close()
    stop_key_service(home)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each generated file is written, beside the python step example's module."""
    made = tmp_path_factory.mktemp("files")
    shutil.copy(EXAMPLE_FOLDER / "early_help" / "summary.py", made)
    return made


def attempt(read: Callable[[Path], object], path: Path, data: bytes) -> TreError | None:
    """`read(path)` with `data` in the file: None if it returned, the TreError if it
    refused. Any other exception fails the test (with its traceback)."""
    path.write_bytes(data)
    try:
        read(path)
    except TreError as refusal:
        event(f"refused: {type(refusal).__name__}")  # --hypothesis-show-statistics
        return refusal
    event("accepted")
    return None


def acted_on(refusal: TreError | None) -> bool:
    """Accepted, or refused as input (exit 2, 3 or 4) with a message a person can read."""
    return refusal is None or (refusal.exit_code in (2, 3, 4) and bool(refusal.message.strip()))


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # The module's session and folder are shared on purpose: every example reads a file
    # in the same folder and acts as the same person.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(data=files(SPECS))
def test_a_job_spec_is_submitted_or_refused_with_a_reason(data: bytes, rita: Session, folder):
    def submit(path: Path) -> None:
        spec = load_spec(path)
        jobs.submit_job(rita, spec, load_pickles(spec, path.parent))

    refusal = attempt(submit, folder / "job.yaml", data)
    assert acted_on(refusal), refusal and refusal.render()


@PROPERTY
@given(data=files([EXAMPLE_FOLDER / "project.yaml"], fresh_name=True))
def test_a_project_request_is_recorded_or_refused_with_a_reason(data: bytes, rita: Session, folder):
    def request(path: Path) -> None:
        projects.request_project(rita, projects.read_request(path))

    refusal = attempt(request, folder / "project.yaml", data)
    assert acted_on(refusal), refusal and refusal.render()


@PROPERTY
@given(data=files(DESCRIPTORS))
def test_a_dataset_descriptor_is_read_or_refused_with_a_reason(data: bytes, folder):
    refusal = attempt(read_descriptor, folder / "descriptor.yaml", data)
    assert acted_on(refusal), refusal and refusal.render()


def test_the_examples_themselves_are_accepted(rita: Session, folder):
    # The generators start from these: they must be valid, or every "near-valid"
    # document would only test refusals.
    for path in SPECS:
        spec = load_spec(path)
        assert load_pickles(spec, path.parent) or "python" not in path.read_text()
    assert projects.read_request(EXAMPLE_FOLDER / "project.yaml")["name"] == "lcr-health-fire"
    assert projects.read_request(EXAMPLE_FOLDER / "project_early_help.yaml")["name"]
    for path in DESCRIPTORS:
        assert read_descriptor(path).columns
