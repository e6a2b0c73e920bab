import itertools

import pytest

from tre.docs import STATES, states_markdown
from tre.errors import StateError
from tre.states import (
    JOB_TRANSITIONS,
    PROJECT_TRANSITIONS,
    JobState,
    ProjectState,
    check_transition,
    mermaid,
)


def test_every_job_state_is_in_the_table_and_reachable():
    assert set(JOB_TRANSITIONS) == set(JobState)
    reachable = {JobState.SUBMITTED}
    for targets in JOB_TRANSITIONS.values():
        reachable |= targets
    assert reachable == set(JobState)


def test_every_project_state_is_in_the_table():
    assert set(PROJECT_TRANSITIONS) == set(ProjectState)


def test_the_issue_lifecycle_is_allowed():
    path = [
        JobState.SUBMITTED,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.CHECKING,
        JobState.AWAITING_REVIEW,
        JobState.RELEASED,
    ]
    for current, new in itertools.pairwise(path):
        check_transition("job", current, new)


def test_a_released_job_cannot_go_back_and_the_error_says_why():
    with pytest.raises(StateError, match="final") as info:
        check_transition("job", JobState.RELEASED, JobState.RUNNING)
    assert "released" in info.value.message


def test_skipping_disclosure_checking_is_impossible():
    with pytest.raises(StateError):
        check_transition("job", JobState.RUNNING, JobState.AWAITING_REVIEW)
    with pytest.raises(StateError):
        check_transition("job", JobState.CHECKING, JobState.RELEASED)


def test_diagram_lists_every_transition():
    text = mermaid("job")
    for state, targets in JOB_TRANSITIONS.items():
        for target in targets:
            assert f"{state.value} --> {target.value}" in text


def test_docs_state_diagram_is_generated_from_the_table():
    assert STATES.read_text() == states_markdown(), "run 'make docs'"
