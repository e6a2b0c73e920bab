"""The one door for Slurm commands: failures keep exit code, stdout and stderr."""

import pytest

from slurm import commands
from slurm.errors import SlurmCommandError


def test_a_failing_command_raises_with_everything_it_said(caplog):
    caplog.set_level("INFO", logger="tre.slurm")
    with pytest.raises(SlurmCommandError) as info:
        commands.run(
            ["sh", "-c", "echo partial; echo 'sbatch: error: Invalid account' >&2; exit 1"]
        )
    error = info.value
    assert error.returncode == 1
    assert error.stdout == "partial\n"
    assert "Invalid account" in error.stderr
    assert "Invalid account" in error.render()
    assert "sh -c" in caplog.text  # every command is logged


def test_a_missing_command_says_so():
    with pytest.raises(SlurmCommandError, match="could not be run") as info:
        commands.run(["sbatch-that-does-not-exist"])
    assert "not found" in " ".join(info.value.reasons)


def test_scontrol_output_is_parsed():
    line = (
        "JobId=7 JobName=tre-job-3 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 NodeList=node001"
    )
    fields = commands.parse_scontrol(line)
    state = commands.SlurmState(
        fields["JobState"], fields["Reason"], fields["ExitCode"], fields["NodeList"]
    )
    assert not state.active
    assert commands.describe(state) == (
        "Slurm state TIMEOUT: the walltime was reached (reason TimeLimit), exit code 0:15"
    )


def test_node_failures_are_retryable_and_timeouts_are_not():
    assert commands.SlurmState("NODE_FAIL").retryable
    assert commands.SlurmState("PREEMPTED").retryable
    assert not commands.SlurmState("TIMEOUT").retryable
    assert commands.SlurmState("PENDING").active


def test_a_command_as_a_job_user_goes_through_sudo_and_never_waits_for_a_password():
    assert commands.as_user("tre-job-2") == ["sudo", "-n", "-u", "tre-job-2", "--"]
    assert commands.as_user(None) == []


def test_sudo_refusing_says_which_rule_is_missing():
    with pytest.raises(SlurmCommandError) as info:
        commands.run(["sh", "-c", "echo 'sudo: a password is required' >&2; exit 1"])
    assert "The job account" not in (info.value.fix or "")  # not sudo itself
    with pytest.raises(SlurmCommandError) as info:
        commands.run(["sudo", "-n", "-u", "nobody-such-user-x", "--", "true"])
    assert "The job account" in (info.value.fix or "")
