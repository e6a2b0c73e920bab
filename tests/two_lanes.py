"""Run the whole suite in two lanes at once: `python -m tests.two_lanes [pytest args]`.

Why: most of the suite's time is spent waiting (for a Slurm allocation, a job's sandbox,
a browser), not computing, so two pytest processes on the 2 cores of a CI machine finish
sooner than one (`make test` uses this; the 15-minute aim).

- lane `slurm`: the tests marked `slurm`, one after another (they share one cluster
  and its gateway port, and some count the jobs Slurm was given, so they never run
  beside each other), and the files of `SLURM_LANE_FILES`.
- lane `rest`: every other test, at a lower CPU priority (nice), so that the Slurm
  lane's jobs are not starved while it waits on them.

Each lane has a base folder of its own (pytest makes its own user's folder private
again whenever a session starts, which would cut a running lane's jobs off theirs).
Each lane's report is printed when it ends; the exit status is the first failing
lane's (0 when both pass).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

#: Test files run whole in the Slurm lane, though not all their tests need Slurm: the
#: longest of the rest (sandbox limits, bombs, walltimes, dispatcher faults, the demo),
#: to even the two lanes out (10.5 and 14.3 min with test_hostile.py alone; each lane's
#: slowest files are printed at the end of a run).
SLURM_LANE_FILES = (
    "tests/e2e/test_hostile.py",
    "tests/e2e/test_dispatcher_faults.py",
    "tests/e2e/test_demo.py",
)
LANE = "TRE_LANE"  # which lane a pytest process is (tests/conftest.py keeps its tests)
LANES = {"slurm": 0, "rest": 5}  # and each lane's niceness
SHOWN_FILES = 12


def in_slurm_lane(nodeid: str, markers: set[str]) -> bool:
    """Whether a test (its pytest node id and marker names) runs in the Slurm lane."""
    return "slurm" in markers or nodeid.split("::")[0] in SLURM_LANE_FILES


def main(argv: list[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix="tre-pytest-lanes-"))
    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name, niceness in LANES.items():
        log = root / f"{name}.log"
        command = [
            *(["nice", "-n", str(niceness)] if niceness else []),
            sys.executable,
            "-m",
            "pytest",
            "-q",
            f"--basetemp={root / name}",
            "-p",
            "no:cacheprovider",
            f"--junitxml={root / name}.xml",  # each test's time, for files_by_time
            *argv,
        ]
        with log.open("wb") as out:
            running[name] = (
                subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, LANE: name},
                ),
                log,
            )
    print(f"two lanes: {', '.join(running)} (logs in {root})", flush=True)
    status = 0
    pending = dict(running)
    while pending:
        for name, (process, log) in list(pending.items()):
            code = process.poll()
            if code is None:
                continue
            del pending[name]
            took = time.monotonic() - started
            print(f"\n===== lane {name}: exit {code} after {took:.0f} s =====", flush=True)
            sys.stdout.write(log.read_text(errors="replace"))
            sys.stdout.flush()
            status = status or code
        time.sleep(0.5)
    for name in running:
        print(f"\nlane {name}, its slowest files (s):", flush=True)
        for seconds, path in files_by_time(root / f"{name}.xml")[:SHOWN_FILES]:
            print(f"  {seconds:7.1f}  {path}")
    print(f"\ntwo lanes: both done in {time.monotonic() - started:.0f} s, exit {status}")
    return status


def files_by_time(report: Path) -> list[tuple[float, str]]:
    """Each test file's total time (set-up, test, tear-down) from a lane's JUnit report,
    longest first: what to move between lanes when one becomes the long pole."""
    if not report.exists():
        return []
    totals: dict[str, float] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        parts = case.get("classname", "").split(".")
        if parts[-1][:1].isupper():  # a test class's name follows its module's
            parts.pop()
        path = "/".join(parts) + ".py"
        totals[path] = totals.get(path, 0.0) + float(case.get("time", 0.0))
    return sorted(((t, p) for p, t in totals.items()), reverse=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
