"""The dependency rule of docs/architecture.md, checked on the source.

Engines (jobs, policies, slurm, disclosure) may use tre's foundation modules but never
its service layer, store, CLI, API, web app or client; disclosure needs nothing but
polars, numpy and itself; tre.models imports no engine; the service layer imports none
of its front ends; the keys (tre.keys) reach nothing of the secured data they open.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("jobs", "policies", "slurm", "disclosure")
FORBIDDEN_FOR_ENGINES = (
    "tre.service",
    "tre.store",
    "tre.cli",
    "tre.api",
    "tre.audit",
    "tre.demo",
    "tre.web",
    "tre.client",
)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "examples" not in p.parts]


@pytest.mark.parametrize("package", ENGINES)
def test_engines_never_reach_into_the_application(package):
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(package)
        for name in imports(path)
        if name.startswith(FORBIDDEN_FOR_ENGINES)
    }
    assert not offenders, sorted(offenders)


def test_disclosure_needs_only_polars_numpy_highspy_and_the_standard_library():
    # highspy (HiGHS) is the interval audit's LP solver (disclosure/intervals.py): a
    # wheel with no dependencies of its own, so `disclosure` still installs on its own.
    allowed = {"polars", "numpy", "highspy", "disclosure", "__future__"}
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules("disclosure")
        for name in imports(path)
        if name.split(".")[0] not in allowed | set(sys.stdlib_module_names)
    }
    assert not offenders, sorted(offenders)


def test_the_domain_models_import_no_engine():
    names = imports(ROOT / "tre" / "models.py")
    assert not {n for n in names if n.split(".")[0] in ENGINES}


@pytest.mark.parametrize("package", ["tre/service", "tre/store", "tre/secured", "tre/keys"])
def test_the_service_layer_knows_nothing_of_its_front_ends(package):
    # The CLI, the HTTP API and the web pages are three doors to one service layer: the
    # layer must not depend on any of them, or a rule could hold through one door only.
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(package)
        for name in imports(path)
        if name.startswith(("tre.web", "tre.cli", "tre.client", "tre.api"))
    }
    assert not offenders, sorted(offenders)


def test_the_web_app_acts_through_the_service_layer_only():
    # It may open a connection (tre.store.Database) for a request; every read and write
    # of state goes through tre.service, where the policies are.
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules("tre/web")
        for name in imports(path)
        if name.startswith("tre.store.")
    }
    assert not offenders, sorted(offenders)


PACKAGES = ("tre", "jobs", "policies", "slurm", "disclosure")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules of this tree it imports (anywhere in it: at the top, in a
    function, under TYPE_CHECKING), each import taken to its most specific module."""
    known = {_module_of(p): p for package in PACKAGES for p in modules(package)}
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            wanted: list[str] = []
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                wanted = [f"{node.module}.{alias.name}" for alias in node.names]
                wanted = [w if w in known else node.module for w in wanted]
            targets |= {w for w in wanted if w in known and w != name}
        graph[name] = targets
    return graph


def test_no_import_circle_anywhere_outside_the_tests():
    graph = _import_graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, [" -> ".join(c) for c in circles]


@pytest.mark.parametrize(
    ("contract", "implementations"),
    [
        ("slurm.backend", ("slurm.local", "slurm.slurm_backends")),
        ("tre.keys.masterkeys", ("tre.keys.keyclient", "tre.keys.pkcs11keys")),
    ],
)
def test_a_contract_module_imports_none_of_its_implementations(contract, implementations):
    assert not _import_graph()[contract] & set(implementations)


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_the_keys_reach_nothing_of_the_secured_data_they_open():
    # One direction only: tre.secured encrypts and reads with tre.keys, never the other
    # way round, not even through a third module, so the key service (which imports the
    # keys) never loads a dataset's code.
    graph = _import_graph()
    reached: dict[str, str] = {}  # module -> the tre.keys module it is reached from
    todo = [m for m in graph if _in("tre.keys", m)]
    for module in todo:
        reached.setdefault(module, module)
    while todo:
        module = todo.pop()
        for target in graph[module] - reached.keys():
            reached[target] = reached[module]
            todo.append(target)
    offenders = {f"{start} reaches {m}" for m, start in reached.items() if _in("tre.secured", m)}
    assert not offenders, sorted(offenders)
