"""Fixtures shared by the end-to-end tests: a home on the Slurm test cluster."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import build_home, stop_key_service


@pytest.fixture(scope="session")
def slurm_template(tmp_path_factory, sources):
    root = build_home(tmp_path_factory.mktemp("slurm"), sources, "slurm-runner", "local-test")
    stop_key_service(root)  # each copy starts its own
    yield root
    stop_key_service(root)


@pytest.fixture
def slurm_home(tmp_path, slurm_template):
    target = tmp_path / "slurm-home"
    shutil.copytree(slurm_template, target, ignore=shutil.ignore_patterns("pid", "lock"))
    yield target
    stop_key_service(target)


def reachable_copy(template: Path, name: str) -> tuple[Path, Path]:
    """A copy of `template` where a site keeps TRE_HOME: under folders every user may
    pass, for jobs some of whose processes open their files as their job user. Not under
    pytest's own folder, which pytest makes its user's only again whenever any pytest
    starts (a second run beside this one would cut a running job off its folder).
    (the copy, the folder above it to remove)."""
    above = Path(tempfile.mkdtemp(prefix=f"tre-{name}-", dir="/tmp"))
    above.chmod(0o711)
    target = above / name
    shutil.copytree(template, target, ignore=shutil.ignore_patterns("pid", "lock"))
    return target, above


def _behind_the_gateway(template: Path, name: str, edit: Callable[[Path], None]) -> Iterator[Path]:
    """A reachable copy of `template`, changed by `edit`, whose jobs reach keys through
    the test cluster's one key gateway (10.77.0.1:7643): any other home's gateway there
    is stopped first, and this home's after."""
    from tre.home import Home
    from tre.keyservice.gateway_process import stop_gateway

    _stop_other_gateways("--listen=10.77.0.1:7643")
    target, above = reachable_copy(template, name)
    edit(target)
    yield target
    stop_gateway(Home(target.absolute(), None))  # type: ignore[arg-type]
    stop_key_service(target)
    shutil.rmtree(above, ignore_errors=True)


def _use(target: Path, backend: str, profile: str) -> None:
    config = target / "tre.yaml"
    text = config.read_text().replace("backend: slurm-runner", f"backend: {backend}")
    config.write_text(text.replace("local-test", profile))


def _one_node_cluster(target: Path) -> None:
    # Its workers are Slurm jobs of the job user: keys through the key gateway only.
    profile = (Path(__file__).parents[2] / "slurm" / "profiles" / "local-test.yaml").read_text()
    profile = profile.replace("backend: slurm-runner", "backend: slurm-cluster")
    (target / "cluster-profile.yaml").write_text(profile + "key_gateway: 10.77.0.1:7643\n")
    _use(target, "slurm-cluster", str(target / "cluster-profile.yaml"))


@pytest.fixture
def cluster_home(slurm_template):
    """A home whose backend is slurm-cluster on the one-node test cluster: its engine
    runs here in the local sandbox, its workers are Slurm jobs of its job user."""
    yield from _behind_the_gateway(slurm_template, "cluster-home", _one_node_cluster)


@pytest.fixture
def nodes_cluster_home(slurm_template):
    """A home whose backend is slurm-cluster on the three compute nodes (profile
    local-nodes-cluster): engine and scheduler here, workers on the nodes."""
    yield from _behind_the_gateway(
        slurm_template,
        "nodes-cluster-home",
        lambda t: _use(t, "slurm-cluster", "local-nodes-cluster"),
    )


@pytest.fixture
def nodes_home(slurm_template):
    """A home whose jobs run on the test cluster's three compute nodes (profile
    local-nodes), reaching keys through the key gateway. Its jobs are submitted as
    their job users, who reach their folders themselves (`reachable_copy`)."""
    yield from _behind_the_gateway(
        slurm_template, "nodes-home", lambda t: _use(t, "slurm-runner", "local-nodes")
    )


def _stop_other_gateways(listen: str) -> None:
    """Stop a key gateway another home left on the test cluster's one gateway port (a
    `make demo BACKEND=slurm` home, say): the tests own the test cluster."""
    import os
    import signal
    import time
    from pathlib import Path

    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"tre.keyservice.gateway" in args and listen.encode() in args:
            try:
                os.killpg(os.getpgid(int(entry.name)), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                continue
    time.sleep(0.2)
