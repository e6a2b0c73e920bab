"""What a job that never started says, and to whom (tre/service/start_failure.py)."""

from __future__ import annotations

import logging

from tre.service import start_failure


def test_exit_127_is_named_and_the_last_lines_go_to_the_admins_log_only(tmp_path, caplog):
    log = tmp_path / "job.log"
    log.write_text("\n".join(f"line {i}" for i in range(20)) + "\nsetpriv: failed to execute x\n")
    with caplog.at_level(logging.WARNING, logger="tre.dispatcher"):
        reason = start_failure.reason(7, "the job process exited with status 127", [log])
    assert reason.startswith("the job could not start: a program it needs was not found")
    assert "setpriv" not in reason and "line" not in reason
    assert "job 7 could not start" in caplog.text
    assert "line 16 | line 17 | line 18 | line 19 | setpriv: failed to execute x" in caplog.text


def test_another_ending_keeps_the_backends_words(tmp_path):
    reason = start_failure.reason(7, "the job process was killed by SIGKILL", [])
    assert reason.startswith("the job could not start: the job process was killed by SIGKILL.")


def test_a_job_that_wrote_its_progress_had_started(tmp_path):
    assert start_failure.never_started(tmp_path)
    (tmp_path / "progress.json").write_text("{}")
    assert not start_failure.never_started(tmp_path)


def test_long_lines_are_cut_and_a_missing_log_is_no_error(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("x" * 1000 + "\n")
    assert start_failure.last_lines([tmp_path / "gone.log", log]) == ["x" * 300]
