"""Fixtures shared by the end-to-end tests: a home on the Slurm test cluster."""

from __future__ import annotations

import shutil

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


@pytest.fixture
def nodes_home(tmp_path, slurm_template):
    """A home whose jobs run on the test cluster's three compute nodes (profile
    local-nodes), reaching keys through the key gateway."""
    from tre.home import Home
    from tre.keyservice.gateway_process import stop_gateway

    target = tmp_path / "nodes-home"
    shutil.copytree(slurm_template, target, ignore=shutil.ignore_patterns("pid", "lock"))
    config = target / "tre.yaml"
    config.write_text(config.read_text().replace("local-test", "local-nodes"))
    yield target
    stop_gateway(Home(target.absolute(), None))  # type: ignore[arg-type]
    stop_key_service(target)
