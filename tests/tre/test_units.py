import pytest

from tre.units import format_duration, format_memory, parse_duration, parse_memory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4GiB", 4 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("8GB", 8 * 10**9),
        ("2gb", 2 * 10**9),
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
        ("1-12", 129600),
        ("1-12:30", 131400),
        ("90min", 5400),
        ("36:00:00", 129600),
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


# --- what a person writes must carry its unit, and a clock has one reading ------------


@pytest.mark.parametrize(
    ("text", "forms"), [("2G", "'2GiB' or '2GB'"), ("512m", "'512MiB' or '512MB'")]
)
def test_a_one_letter_memory_unit_is_refused_as_ambiguous_with_both_readings(text, forms):
    # Slurm's --mem=2G is 2GiB; Dask's memory_limit '2G' is 2,000,000,000 bytes.
    with pytest.raises(ValueError) as info:
        parse_memory(text)
    assert f"memory {text!r} is ambiguous" in str(info.value)
    assert f"write {forms}" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4, "memory 4 has no unit (a bare number would mean 4 bytes)"),
        ("4", "memory '4' has no unit"),
        (4, "e.g. '4GiB' or '4MiB'"),
    ],
)
def test_memory_a_person_wrote_without_a_unit_is_refused_saying_to_add_one(value, expected):
    with pytest.raises(ValueError) as info:
        parse_memory(value, bare_numbers=False)
    assert expected in str(info.value)


@pytest.mark.parametrize("value", [30, "30", 30.0])
def test_a_walltime_a_person_wrote_without_a_unit_is_refused_saying_to_add_one(value):
    with pytest.raises(ValueError) as info:
        parse_duration(value, bare_numbers=False)
    text = str(info.value)
    assert "has no unit (a bare number would mean 30 seconds)" in text
    assert "'30m' for minutes" in text
    assert "HH:MM:SS" in text


def test_text_without_a_unit_is_refused_even_where_bare_numbers_stand():
    with pytest.raises(ValueError, match="has no unit"):
        parse_memory("4")
    with pytest.raises(ValueError, match="has no unit"):
        parse_duration("30")


def test_tre_own_records_keep_bare_bytes_and_seconds():
    assert parse_memory(4 * 1024**3) == 4 * 1024**3
    assert parse_duration(3600) == 3600


@pytest.mark.parametrize("text", ["2:00", "00:45"])
def test_a_two_part_clock_is_refused_as_ambiguous_with_both_readings(text):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    message = str(info.value)
    assert "is ambiguous" in message
    first, second = text.split(":")
    assert f"'{int(first):02d}:{second}:00' or '00:{int(first):02d}:{second}'" in message


@pytest.mark.parametrize(("text", "big"), [("00:99", 99), ("01:30:75", 75), ("1-12:60:00", 60)])
def test_a_minute_or_second_out_of_range_is_refused_never_carried_over(text, big):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert f"run from 00 to 59, and {big} is more" in str(info.value)


def test_hours_after_days_must_be_below_24():
    with pytest.raises(ValueError, match="hours run from 00 to 23"):
        parse_duration("1-25:00:00")


@pytest.mark.parametrize("value", [True, False, None])
def test_true_false_or_nothing_is_not_a_size_or_duration(value):
    with pytest.raises(ValueError, match="must be a number with a unit"):
        parse_memory(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a number with a unit"):
        parse_duration(value)  # type: ignore[arg-type]


def test_an_unknown_unit_of_time_is_named():
    with pytest.raises(ValueError, match="'fortnights' is not a unit of time"):
        parse_duration("2fortnights")
