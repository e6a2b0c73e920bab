"""The TRE's bounds on one job's work: defaults, and a file that overrides them."""

from __future__ import annotations

import pytest

from policies.limits import Limits, limits_path, load_limits
from tre.errors import PlatformError


def test_without_a_file_the_defaults_hold(tmp_path):
    limits = load_limits(tmp_path)
    assert limits == Limits()
    assert (limits.steps_per_job, limits.differencing_pairs) == (200, 20_000)
    assert limits.check_memory == 8 << 30


def test_a_file_overrides_what_it_names(tmp_path):
    path = limits_path(tmp_path)
    path.parent.mkdir()
    path.write_text("steps_per_job: 50\ncheck_memory: 2GiB\n")
    limits = load_limits(tmp_path)
    assert (limits.steps_per_job, limits.check_memory) == (50, 2 << 30)
    assert limits.outputs_per_job == Limits().outputs_per_job


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("steps_per_job: 0\n", "steps_per_job"),
        ("step_per_job: 10\n", "step_per_job"),  # a misspelling is not ignored
        ("check_memory: lots\n", "check_memory"),
        ("[1, 2]\n", "the file"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field(tmp_path, text, said):
    path = limits_path(tmp_path)
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(PlatformError) as info:
        load_limits(tmp_path)
    assert said in info.value.render()
    assert "policies/limits.py lists every field" in info.value.render()
