"""The two-lane runner's report of where each lane's time went (tests/two_lanes.py)."""

from pathlib import Path

from tests.two_lanes import files_by_time, in_slurm_lane


def test_each_files_time_is_summed_over_its_tests_and_classes(tmp_path: Path):
    report = tmp_path / "rest.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.e2e.test_a" name="t1" time="2.5"/>'
        '<testcase classname="tests.e2e.test_a.TestGroup" name="t2" time="1.0"/>'
        '<testcase classname="tests.web.test_b" name="t3" time="3.0"/>'
        "</testsuite></testsuites>"
    )
    assert files_by_time(report) == [(3.5, "tests/e2e/test_a.py"), (3.0, "tests/web/test_b.py")]
    assert files_by_time(tmp_path / "none.xml") == []


def test_a_test_is_in_the_slurm_lane_by_its_marker_or_its_file():
    assert in_slurm_lane("tests/web/test_b.py::t", {"slurm"})
    assert in_slurm_lane("tests/e2e/test_hostile.py::t", set())
    assert not in_slurm_lane("tests/web/test_b.py::t", {"slow"})
