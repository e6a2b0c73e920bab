"""The secured-read benchmark still runs end to end and agrees with polars.

No timing is asserted (timings live in bench/results); this keeps the benchmark from
rotting between the runs that produce docs/performance.md.
"""

import json

import pytest

from bench.run import main

pytestmark = pytest.mark.slow


def test_the_secured_read_benchmark_runs_and_agrees_with_polars(tmp_path):
    assert (
        main(["--rows", "3000", "--repeat", "1", "--only", "secured_read", "--out", str(tmp_path)])
        == 0
    )
    (result,) = tmp_path.glob("*.json")
    queries = json.loads(result.read_text())["benchmarks"]["secured_read"]["queries"]
    assert set(queries) == {"full_scan", "projection", "selective_filter"}
    assert all(query["agree"] for query in queries.values())
    assert queries["selective_filter"]["matching_rows"] < 3000
