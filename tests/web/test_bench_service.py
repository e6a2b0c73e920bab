"""The service benchmark still runs end to end: no errors, no job lost or duplicated.

No timing is asserted (timings live in bench/ results); this keeps bench/service_load.py
from rotting between the runs that produce its figures.
"""

import pytest

from bench.service_load import measure

pytestmark = pytest.mark.slow


def test_the_service_benchmark_loses_no_job(tmp_path):
    figures = measure(tmp_path, clients=5, seconds=2)
    assert figures["requests"] > 0
    assert figures["errors"] == 0, figures["error_statuses"]
    assert figures["jobs_ok"], figures["jobs"]
    assert figures["jobs"]["stored"] == figures["jobs"]["acknowledged"] > 0
    assert not figures["token_in_server_log"]
