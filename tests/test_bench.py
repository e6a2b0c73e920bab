"""The benchmark still runs end to end and its job results agree with polars.

No timing is asserted here (timings live in bench/ results); this only keeps the
benchmark from rotting between the runs that produce docs/performance.md.
"""

import json

import pytest

from bench.run import main

pytestmark = pytest.mark.slow


def test_the_table_benchmark_runs_and_agrees_with_polars(tmp_path):
    assert (
        main(["--rows", "3000", "--repeat", "1", "--only", "table_job", "--out", str(tmp_path)])
        == 0
    )
    (result,) = tmp_path.glob("*.json")
    shapes = json.loads(result.read_text())["benchmarks"]["table_job"]["shapes"]
    assert set(shapes) == {"small", "10k"}
    assert all(shape["results_agree"] for shape in shapes.values())


@pytest.mark.slurm
def test_the_slurm_benchmark_runs_both_backends(tmp_path):
    assert (
        main(["--rows", "3000", "--repeat", "1", "--only", "slurm_job", "--out", str(tmp_path)])
        == 0
    )
    (result,) = tmp_path.glob("*.json")
    jobs = json.loads(result.read_text())["benchmarks"]["slurm_job"]["jobs"]
    assert set(jobs) == {"trivial", "table_10m"}
    assert all(entry["ratio"] > 0 for entry in jobs.values())
