import math

import pytest

from jobs.stats import normal_sf2, t_sf2


@pytest.mark.parametrize(
    ("t", "df", "p"),
    # Reference values from standard t tables.
    [
        (2.0, 10, 0.07338803),
        (2.228, 10, 0.0500),
        (0.5, 3, 0.65144796),
        (1.0, 1, 0.5),
        (3.0, 30, 0.00537),
    ],
)
def test_t_two_sided_p_values_match_tables(t, df, p):
    assert t_sf2(t, df) == pytest.approx(p, abs=2e-4)


def test_t_approaches_the_normal_for_large_df():
    assert t_sf2(1.959964, 1e7) == pytest.approx(0.05, abs=1e-5)
    assert normal_sf2(1.959964) == pytest.approx(0.05, abs=1e-6)


def test_no_degrees_of_freedom_gives_nan():
    assert math.isnan(t_sf2(1.0, 0))
