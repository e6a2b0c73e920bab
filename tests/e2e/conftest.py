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
