import pytest

from tre.units import format_duration, format_memory, parse_duration, parse_memory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4GiB", 4 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("8GB", 8 * 10**9),
        ("2g", 2 * 10**9),
        ("1.5GiB", int(1.5 * 1024**3)),
        (1024, 1024),
    ],
)
def test_memory_sizes_people_write_are_read(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "4 parsecs", "-1GiB", "0", ""])
def test_unreadable_memory_says_the_accepted_forms(text):
    with pytest.raises(ValueError, match=r"GiB|positive"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("01:30:00", 5400),
        ("2-00:00:00", 172800),
        ("00:45", 2700),
        (60, 60),
    ],
)
def test_durations_in_common_and_slurm_forms(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration_names_the_forms():
    with pytest.raises(ValueError, match="30m"):
        parse_duration("a while")


def test_formatting_round_trips():
    assert format_memory(4 * 1024**3) == "4GiB"
    assert format_duration(5400) == "01:30:00"
    assert format_duration(90000) == "1-01:00:00"
    assert parse_duration(format_duration(90061)) == 90061
